"""The README's Python snippets run as written: each is executed here (with the names it
says are yours), or stands word for word in an example file that a test runs."""

from __future__ import annotations

import re
import textwrap

from pusherlib.endpoints import ChannelPolicy, Subscription
from pushqueue.testing import fake_queue
from tests.support.processes import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def block(start: str) -> str:
    [found] = [code for code in BLOCKS if code.startswith(start)]
    return found


def test_every_python_snippet_is_covered_here():
    covered = (
        "import pushqueue\n\nfollowers",
        "from pushqueue.testing",
        "import pushqueue\nfrom handlers",
        "@policy",
    )
    assert sorted(code[:30] for code in BLOCKS) == sorted(block(start)[:30] for start in covered), (
        "a new README snippet needs its test here"
    )


def test_the_event_options_snippet_queues_what_it_says():
    with fake_queue() as queue:
        exec(block("import pushqueue\n\nfollowers"), {})
    assert len(queue.pushed(event="posted")) == 250 and len(queue.events) == 253
    tasks = {task.name: task for task in queue.tasks}
    [reminder] = [e for e in queue.events if e.event == "reminder"]
    [report] = [e for e in queue.events if e.event == "report"]
    [paid] = [e for e in queue.events if e.event == "paid"]
    assert reminder.eta is not None and report.queue_name == "pusher-0"
    assert tasks[paid.task].name.startswith("idem-")


def test_the_fake_queue_snippet_is_the_example_test_run_by_the_suite():
    snippet = block("from pushqueue.testing")
    example = (ROOT / "examples" / "test_seed_handlers.py").read_text()
    test = snippet[snippet.index("def test_") :]
    assert test in example  # examples/test_seed_handlers.py runs in tests/pushqueue/test_event_options.py


def test_the_own_code_snippet_is_examples_own_code_line_for_line():
    source = (ROOT / "examples" / "own_code.py").read_text()
    for line in block("import pushqueue\nfrom handlers").splitlines():
        code = line.split("#")[0].strip().replace('"own-code"', "CHANNEL")
        if code and not code.startswith(("pusher.trigger_async", "with ndb.Client")):
            assert code in source, code  # examples/own_code.py runs in tests/app/test_readme_guide.py


def test_the_channel_rule_snippet_decides_as_it_reads():
    policy = ChannelPolicy()
    owners = {("ada", "7")}
    names = {
        "policy": policy,
        "current_user": lambda request: request,
        "owns_order": lambda u, o: (u, o) in owners,
    }
    exec(textwrap.dedent(block("@policy")), names)
    assert policy.may_subscribe(Subscription("ada", "private-orders.7", "1.1")).allowed
    assert not policy.may_subscribe(Subscription("bob", "private-orders.7", "1.1")).allowed
