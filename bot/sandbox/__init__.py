"""`approval-bot sandbox`: the real bot against simulated GitLab and Slack, with a page to drive it.

- `runner`: starts everything and stops it on Ctrl-C/SIGTERM
- `processes`: the `web` and `worker` child processes, and the Redis check
- `env`: their environment (shared with the integration tests' harness)
- `people`: the cast and the example policy
- `driver`: signed GitLab webhooks and Slack requests sent to the real edge
- `page`, `state`, `templates/`, `static/`: the page and what it shows
- `blockkit`, `mrkdwn`: Block Kit and Slack mrkdwn as escaped HTML
"""
