"""Local stand-ins for GitLab, Slack and an audit API that answer like the real services.

The integration tests and `approval-bot sandbox` share them: each is a small state
machine served over real HTTP on 127.0.0.1, and fails loudly on calls it does not know.
"""
