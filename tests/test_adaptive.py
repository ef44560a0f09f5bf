"""ThreadChoice picks the thread count its own calls ran faster with, and follows a change of load."""
import time

from graphc.runtime import adaptive

from test_threads import run_in_threads


class Step:
    """A step taking `cost[count]` seconds on the count last set; records the counts it ran on."""

    def __init__(self, cost):
        self.cost, self.count, self.ran = dict(cost), None, []

    def set(self, count):
        self.count = count

    def __call__(self, value):
        self.ran.append(self.count)
        time.sleep(self.cost[self.count])
        return value


def test_it_keeps_many_threads_while_they_are_faster_and_moves_to_one_when_they_are_not():
    step = Step({2: 0.0002, 1: 0.002})
    choice = adaptive.ThreadChoice(step, step.set, 2)
    assert [choice(k) for k in range(200)] == list(range(200))  # results pass through
    assert choice.chosen == 2 and step.ran.count(1) <= 3 * 4 and choice.interval > adaptive.FIRST
    step.cost = {2: 0.004, 1: 0.0003}  # a neighbour took a core: two threads now wait on each other
    for k in range(2 * adaptive.LONGEST + 50):
        choice(k)
        if choice.chosen == 1:
            break
    assert choice.chosen == 1
    before = len(step.ran)
    for k in range(100):
        choice(k)
    assert step.ran[before:].count(1) >= 90  # it stays on one thread, trying two only now and then


def test_threads_calling_one_graph_share_its_choice_safely():
    step = Step({2: 0.0001, 1: 0.0005})
    choice = adaptive.ThreadChoice(step, step.set, 2)

    def work(_):
        for k in range(300):
            assert choice(k) == k
    run_in_threads(work, 4)  # re-raises what any thread raised
    assert choice.chosen in (1, 2)
