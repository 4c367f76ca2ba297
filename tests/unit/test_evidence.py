"""The evidence builder against the GitLab simulator (real HTTP, python-gitlab), with
pieces missing; the diff arithmetic; and how the evidence reads in the Slack message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.evidence import Evidence, StageJob, added_lines, earlier_jobs, flags_on_changes
from bot.evidence_blocks import evidence_blocks
from bot.evidence_gather import Target, gather
from bot.gitlab import GitLabClient
from bot.gitlab_reads import GitLabReads
from bot.policy import EvidenceSettings
from bot.risk import RiskFlag
from bot.simulators.gitlab import FakeGitLab

PROJECT, PIPELINE, GATE = 7, 900, 9001
BASE, HEAD = "a" * 40, "b" * 40
OLD_SQL = "CREATE TABLE transactions (id bigint);\nDELETE FROM transactions;\n"
NEW_SQL = OLD_SQL + "ALTER TABLE transactions ADD COLUMN fee bigint NOT NULL;\n"
SETTINGS = EvidenceSettings()


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        fake.add_project(PROJECT, "fintech/wallet-api")
        fake.add_commit(PROJECT, BASE, title="Base", files={"db/migrations/1.sql": OLD_SQL})
        fake.add_pipeline(PROJECT, PIPELINE, sha=HEAD)
        fake.add_job(PROJECT, PIPELINE, GATE - 2, "lint", "failed", "test", allow_failure=True)
        fake.add_job(PROJECT, PIPELINE, GATE - 1, "unit", "success", "test")
        fake.add_job(PROJECT, PIPELINE, GATE, "compliance-gate", "manual", "approve")
        fake.add_job(PROJECT, PIPELINE, GATE + 1, "deploy", "created", "deploy")
        yield fake


def run(fake: FakeGitLab) -> Evidence:
    reads = GitLabReads(GitLabClient(fake.url, fake.token, timeout=2))
    target = Target(PROJECT, PIPELINE, GATE, HEAD, f"{fake.url}/fintech/wallet-api")
    return gather(reads, target, SETTINGS)


def change(fake: FakeGitLab, files: dict[str, str | None], deployed: bool = True) -> None:
    fake.add_commit(PROJECT, "c" * 40, title="Middle", parent=BASE, files={"x.txt": "1\n"})
    fake.add_commit(
        PROJECT, HEAD, title="Add <fee>", author_name="Alice", parent="c" * 40, files=files
    )
    if deployed:
        fake.add_deployment(PROJECT, 1, PIPELINE - 1, BASE)


def test_commits_since_the_deployment_jobs_and_flags_on_added_lines(gitlab: FakeGitLab) -> None:
    change(gitlab, {"db/migrations/1.sql": NEW_SQL, "app/fee.py": "X = 1\n"})
    found = run(gitlab)
    assert found.base_sha == BASE
    assert [c.title for c in found.commits] == ["Middle", "Add <fee>"]
    assert found.compare_url is not None
    assert found.compare_url.endswith(f"/-/compare/{BASE}...{HEAD}")
    assert [(j.name, j.status, j.allow_failure) for j in found.jobs] == [
        ("lint", "failed", True),
        ("unit", "success", False),
    ]
    # The old DELETE without WHERE (line 2) was already deployed: only line 3 is new.
    assert [(f.path, f.line, f.rule) for f in found.flags] == [
        ("db/migrations/1.sql", 3, "financial-table"),
        ("db/migrations/1.sql", 3, "not-null-without-default"),
    ]
    assert found.facts() == {"migration_risk": True, "failed_jobs": True}
    assert found.missing == ()
    assert not gitlab.unexpected


def test_a_new_migration_file_is_flagged_whole(gitlab: FakeGitLab) -> None:
    change(gitlab, {"db/migrations/2.sql": "TRUNCATE balances;\n"})
    assert [(f.line, f.rule) for f in run(gitlab).flags] == [
        (1, "financial-table"),
        (1, "truncate"),
    ]


def test_changes_outside_migration_paths_are_not_scanned(gitlab: FakeGitLab) -> None:
    change(gitlab, {"docs/example.sql": "DROP TABLE transactions;\n"})
    found = run(gitlab)
    assert found.flags == ()
    assert found.migrations == ()
    assert found.facts()["migration_risk"] is False
    assert not gitlab.calls_to("GET", r"/repository/files/")


def test_without_an_earlier_deployment_the_commit_alone_is_shown(gitlab: FakeGitLab) -> None:
    change(gitlab, {"db/migrations/1.sql": NEW_SQL}, deployed=False)
    found = run(gitlab)
    assert found.base_sha is None
    assert [c.title for c in found.commits] == ["Add <fee>"]
    assert found.missing == ()  # the message's heading says there was no earlier deployment
    assert {f.line for f in found.flags} == {3}


def test_a_failed_compare_is_named_and_counts_as_risky(gitlab: FakeGitLab) -> None:
    change(gitlab, {"db/migrations/1.sql": NEW_SQL})
    gitlab.fail_next("GET", r"/repository/compare", 502, times=None)
    found = run(gitlab)
    assert found.commits == ()
    assert found.missing[0].startswith(f"changes since {BASE[:8]}: unavailable (")
    assert found.migrations_unchecked
    assert found.facts()["migration_risk"] is True
    assert [j.name for j in found.jobs] == ["lint", "unit"]  # the rest still came


def test_an_unreadable_migration_is_named(gitlab: FakeGitLab) -> None:
    change(gitlab, {"db/migrations/1.sql": NEW_SQL})
    gitlab.fail_next("GET", r"/repository/files/", 500, times=None)
    found = run(gitlab)
    assert found.missing == (
        "migration db/migrations/1.sql: unavailable (file db/migrations/1.sql: HTTP 500)",
    )
    assert found.migrations_unchecked


def test_everything_unavailable_still_gives_evidence(gitlab: FakeGitLab) -> None:
    gitlab.fail_next("GET", r"/projects/", 503, times=None)
    found = run(gitlab)
    assert len(found.missing) == 4  # deployment, commit, changed files, earlier jobs
    # What could not be established counts as risky (fail safe), and the sign-off says why.
    assert found.facts() == {"migration_risk": True, "failed_jobs": True}
    assert found.flag_lines() == [
        "changed migrations could not all be checked: treated as risky",
        "earlier jobs could not be read: treated as failed",
    ]


def test_an_unknown_last_deployment_leaves_earlier_commits_unchecked(gitlab: FakeGitLab) -> None:
    """Regression: a failed deployments call used to look like a first deployment, so only
    the head commit was scanned and the change counted as safe."""
    change(gitlab, {"app/fee.py": "X = 2\n"})
    gitlab.fail_next("GET", r"/deployments", 502)
    found = run(gitlab)
    assert found.flags == ()
    assert found.migrations_unchecked
    assert found.facts()["migration_risk"] is True


def test_a_rolled_back_deployment_is_not_the_base(gitlab: FakeGitLab) -> None:
    """Regression: the rollback job's own deployment (at the rolled-back commit) was taken
    as the last deployment, hiding the rolled-back changes from the next request."""
    change(gitlab, {"db/migrations/1.sql": NEW_SQL}, deployed=False)
    gitlab.add_deployment(PROJECT, 1, PIPELINE - 2, BASE)
    gitlab.add_deployment(PROJECT, 2, PIPELINE - 1, "c" * 40)
    gitlab.add_deployment(PROJECT, 3, PIPELINE - 1, "c" * 40, job_name="rollback:production")
    found = run(gitlab)
    assert found.base_sha == BASE
    assert [c.title for c in found.commits] == ["Middle", "Add <fee>"]


def test_a_slow_gitlab_runs_out_of_budget_rather_than_delaying_the_request(
    gitlab: FakeGitLab,
) -> None:
    change(gitlab, {"db/migrations/1.sql": NEW_SQL})
    gitlab.fail_next("GET", r"/deployments", timeout=0.3)
    reads = GitLabReads(GitLabClient(gitlab.url, gitlab.token, timeout=2))
    target = Target(PROJECT, PIPELINE, GATE, HEAD, None)
    found = gather(reads, target, SETTINGS, budget_s=0.1)
    assert any("skipped, evidence took longer" in m for m in found.missing)


def test_evidence_round_trips_through_json() -> None:
    flag = RiskFlag("m.sql", 1, "truncate", "TRUNCATE balances")
    evidence = Evidence(
        environment="production",
        base_sha=BASE,
        jobs=(StageJob("lint", "test", "failed", True),),
        flags=(flag,),
        missing=("x",),
    )
    assert Evidence.from_json(evidence.to_json()) == evidence
    assert Evidence.from_json(None) is None


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        ("@@ -1,2 +1,3 @@\n a\n b\n+c\n", {3}),
        ("@@ -0,0 +1,2 @@\n+a\n+b\n", {1, 2}),
        ("@@ -3,3 +3,3 @@\n x\n-y\n+Y\n z\n\\ No newline at end of file\n", {4}),
        ("@@ -1 +1 @@\n-a\n+b\n@@ -10,2 +10,3 @@\n k\n+l\n m\n", {1, 11}),
        ("", None),
    ],
)
def test_added_lines(diff: str, expected: set[int] | None) -> None:
    assert added_lines(diff) == expected


def test_flags_on_unchanged_lines_are_dropped_unless_the_diff_is_unreadable() -> None:
    flags = [RiskFlag("m.sql", 2, "truncate", "t"), RiskFlag("m.sql", 5, "drop-table", "d")]
    assert flags_on_changes(flags, "@@ -4,1 +4,2 @@\n x\n+y\n", False) == [flags[1]]
    assert flags_on_changes(flags, "", False) == flags
    assert flags_on_changes(flags, "@@ -4,1 +4,2 @@\n x\n+y\n", True) == flags


def test_earlier_jobs_are_those_that_ran() -> None:
    jobs = [
        {"id": 3, "name": "deploy", "status": "created"},
        {"id": 2, "name": "gate", "status": "manual"},
        {"id": 1, "name": "test", "status": "success"},
        {"id": 0, "name": "sast", "status": "failed", "allow_failure": True},
    ]
    assert [j.name for j in earlier_jobs(jobs, gate_job_id=2)] == ["sast", "test"]


def _text(blocks: list[dict]) -> str:
    return str(blocks)


def test_the_message_shows_flags_commits_jobs_and_why_more_is_needed() -> None:
    evidence = Evidence(
        environment="production",
        base_sha=BASE,
        compare_url="https://gitlab/x/-/compare/a...b",
        commits=(),
        jobs=(StageJob("sast", "test", "failed", True, "https://gitlab/j/1"),),
        flags=tuple(RiskFlag("m.sql", n, "truncate", "TRUNCATE <b>") for n in range(1, 13)),
        missing=("earlier jobs: unavailable (HTTP 500)",),
    )
    blocks = evidence_blocks(evidence, ["migration risk: also needs 1 dba"])
    text = _text(blocks)
    assert "Extra approval required*: migration risk: also needs 1 dba" in text
    assert "Migration risk* (12 found)" in text
    assert "`m.sql:10`" in text
    assert "`m.sql:11`" not in text
    assert "…and 2 more" in text
    assert "TRUNCATE &lt;b&gt;" in text  # developer text never forms Slack markup
    assert "*<https://gitlab/j/1|sast>: failed (allowed to fail)*" in text
    assert "Not available: earlier jobs: unavailable (HTTP 500)" in text
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)


def test_a_request_without_evidence_shows_nothing_extra() -> None:
    assert evidence_blocks(None, []) == []


def test_text_from_gitlab_is_escaped_for_slack_in_the_request_message() -> None:
    """Regression: a `<` in a commit title reached Slack as a link token."""
    from datetime import datetime

    from bot.blocks import request_message
    from bot.store.models import ApprovalRequest, RequestState

    request = ApprovalRequest(
        id="a" * 32,
        project_id=1,
        project_path="fintech/x",
        pipeline_id=2,
        job_id=3,
        job_name="compliance-gate",
        ref="feature/<x>",
        sha=HEAD,
        commit_title="Fix <https://evil.example|your bank> & more",
        commit_author_name="<!channel>",
        channel="C0X",
        policy_version="v",
        state=RequestState.REJECTED,
        rejected_by="U1",
        reject_reason="<!here> no",
        expires_at=datetime(2030, 1, 1),
    )
    text = str(request_message(request, [], {})[1])
    assert "Fix &lt;https://evil.example|your bank&gt; &amp; more" in text
    assert "&lt;!channel&gt;" in text
    assert "`feature/&lt;x&gt;`" in text
    assert ": &lt;!here&gt; no" in text
    assert "<https://evil" not in text
    assert "<!channel>" not in text
