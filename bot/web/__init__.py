"""The HTTP edge: verify, filter, enqueue, answer. No Slack or GitLab work happens here
except opening the reject modal, which Slack requires within 3 s of the click."""
