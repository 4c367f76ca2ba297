"""Column sizes shared by the models and the webhook's typed shapes (bot.events)."""

from __future__ import annotations

# GitLab nests groups up to 20 levels deep and each path may have 255 characters, so a
# project's full path (`a/b/…/project`) has at most 20 * 255 + 19 slashes.
GITLAB_MAX_DEPTH = 20
GITLAB_MAX_PATH = 255
FULL_PATH_MAX = GITLAB_MAX_DEPTH * GITLAB_MAX_PATH + GITLAB_MAX_DEPTH - 1
# A GitLab URL holds the full path, plus the host and a suffix (`/-/pipelines/123`).
URL_MAX = 8192
