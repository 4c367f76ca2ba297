"""The sandbox's cast and its example policy: who exists in the simulated Slack and GitLab.

One table drives everything: the Slack users FakeSlack knows (with e-mails), the GitLab
usernames in the policy's `identities` map, and the roles in the policy file. The same
person therefore has the same e-mail and username on both sides, so separation of duties
(no approving your own pipeline) can be seen working.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.policy import Policy
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack

POLICY_FILE = "approvers.yml"


@dataclass(frozen=True)
class Person:
    slack_id: str
    name: str  # Slack handle, also the GitLab username
    real_name: str
    gitlab_id: int
    about: str  # what the page says about them (their roles come from the live policy)

    @property
    def email(self) -> str:
        return f"{self.name}@sandbox.example"

    @property
    def gitlab_user(self) -> dict[str, str | int]:
        """The `user` object of a Pipeline Hook for this person."""
        return {
            "id": self.gitlab_id,
            "name": self.real_name,
            "username": self.name,
            "email": self.email,
        }

    @property
    def commit_author(self) -> dict[str, str]:
        return {"name": self.real_name, "email": self.email}


PEOPLE: tuple[Person, ...] = (
    Person("U0SBRM001", "rita", "Rita Release", 11, "release manager"),
    Person("U0SBRM002", "ravi", "Ravi Release", 12, "release manager"),
    Person("U0SBCO001", "colette", "Colette Compliance", 13, "compliance officer"),
    Person("U0SBDBA01", "dana", "Dana DBA", 14, "database administrator"),
    Person("U0SBADM01", "ada", "Ada Admin", 15, "admin of the bot"),
    Person("U0SBDEV01", "devi", "Devi Developer", 16, "developer who runs pipelines"),
)
DEFAULT_TRIGGERER = "devi"

CHANNELS: dict[str, str] = {"C0SBDEPLOY": "deploys", "C0SBDATA": "data-releases"}

# Every Slack ID, channel and username here must match PEOPLE and CHANNELS above.
POLICY_YAML = """\
# The sandbox's example policy (approval-bot sandbox). Edit it while the sandbox runs:
# the bot reloads it within seconds, and `approval-bot config check --policy FILE` checks it.
version: 1
roles:
  release-manager:
    members: [U0SBRM001, U0SBRM002]   # Rita, Ravi
  compliance-officer:
    members: [U0SBCO001]              # Colette
  dba:
    members: [U0SBDBA01]              # Dana
admins: [U0SBADM01]                   # Ada: may reject any gate
identities:                           # GitLab username -> Slack user ID
  rita: U0SBRM001
  ravi: U0SBRM002
  colette: U0SBCO001
  dana: U0SBDBA01
  ada: U0SBADM01
  devi: U0SBDEV01
gates:
  - project: fintech/payments-api
    job: compliance-gate
    channel: C0SBDEPLOY
    require:
      - role: release-manager
        count: 1
      - role: compliance-officer
        count: 1
    forbid_self_approval: true
    expire_after: 1h
    on_reject: cancel_pipeline
    risk_rules:                       # a risky migration also needs the DBA
      - when: {migration_risk: true}
        require:
          - role: dba
            count: 1
  - project: fintech/ledger-db
    channel: C0SBDATA
    require:
      - role: release-manager
        count: 1
      - role: dba
        count: 1
    expire_after: 1h
    on_reject: cancel_pipeline
"""


def person(slack_id_or_name: str) -> Person | None:
    return next((p for p in PEOPLE if slack_id_or_name in (p.slack_id, p.name)), None)


def display_name(slack_id: str) -> str:
    """How the page names a Slack user: the real name of a cast member, else the raw id."""
    found = person(slack_id)
    return found.real_name if found else slack_id


def roles_of(policy: Policy, slack_id: str) -> list[str]:
    """The person's roles in the policy in force (admins listed as "admin")."""
    roles = sorted(policy.static_roles_of(slack_id))
    return [*roles, "admin"] if policy.is_admin(slack_id) else roles


def write_policy(workdir: Path) -> Path:
    """The example policy in the workdir; an existing file is kept (it may be edited)."""
    path = workdir / POLICY_FILE
    if not path.exists():
        path.write_text(POLICY_YAML, encoding="utf-8")
    return path


def seed_slack(slack: FakeSlack) -> None:
    for p in PEOPLE:
        slack.add_user(p.slack_id, p.name, p.email, real_name=p.real_name)


def seed_gitlab(gitlab: FakeGitLab) -> None:
    """The cast as GitLab users, each showing their e-mail as public (verified) e-mail: the
    bot ties a commit author's e-mail to a GitLab user, then to Slack, through them."""
    for p in PEOPLE:
        gitlab.users.add(p.gitlab_id, p.name, p.real_name, public_email=p.email)
