"""QueryThreads: the second core only while other programs leave it idle."""

from replybot.cores import QueryThreads, read_cpu_times


class FakeClock:
    """Cumulative (idle, total) CPU seconds of a 2-core machine and our own CPU seconds."""

    def __init__(self):
        self.idle = self.total = self.own = 0.0

    def advance(self, seconds: float, others_busy_cores: float, own_busy_cores: float = 0.0) -> None:
        self.total += 2 * seconds
        self.own += own_busy_cores * seconds
        self.idle += (2 - others_busy_cores - own_busy_cores) * seconds

    def read(self):
        return self.idle, self.total

    def own_cpu(self) -> float:
        return self.own


def threads_with(clock: FakeClock) -> QueryThreads:
    return QueryThreads(max_threads=2, cpus=2, read=clock.read, own_cpu=clock.own_cpu)


def test_one_thread_until_a_window_was_measured():
    clock = FakeClock()
    assert threads_with(clock).choose() == 1


def test_idle_machine_gets_two_threads_even_while_we_were_working():
    clock = FakeClock()
    q = threads_with(clock)
    clock.advance(2.0, others_busy_cores=0.0, own_busy_cores=1.5)  # back-to-back queries of our own
    assert q.choose() == 2


def test_another_program_on_one_core_means_one_thread():
    clock = FakeClock()
    q = threads_with(clock)
    clock.advance(2.0, others_busy_cores=0.0)
    assert q.choose() == 2
    clock.advance(2.0, others_busy_cores=1.0)
    assert q.choose() == 1


def test_too_short_a_window_keeps_the_last_decision():
    clock = FakeClock()
    q = threads_with(clock)
    clock.advance(1.0, others_busy_cores=0.0)
    assert q.choose() == 2
    clock.advance(0.01, others_busy_cores=2.0)  # a couple of clock ticks say nothing
    assert q.choose() == 2


def test_no_proc_stat_means_one_thread():
    q = QueryThreads(cpus=2, read=lambda: None)
    assert q.choose() == 1


def test_one_core_machine_never_asks_for_two():
    clock = FakeClock()
    q = QueryThreads(max_threads=2, cpus=1, read=clock.read, own_cpu=clock.own_cpu)
    clock.advance(1.0, others_busy_cores=0.0)
    assert q.choose() == 1


def test_limit_runs_the_block_and_reports_the_threads():
    clock = FakeClock()
    q = threads_with(clock)
    with q.limit() as n:
        assert n == 1


def test_reads_this_machines_counters_or_none(tmp_path):
    times = read_cpu_times()
    assert times is None or (0 <= times[0] <= times[1])
    bad = tmp_path / "stat"
    bad.write_text("intr 1 2 3\n")
    assert read_cpu_times(str(bad)) is None


class ThreadedEncoder:
    """Stands in for LeanEncoder's thread setting."""

    def __init__(self):
        self.threads = 1
        self.seen: list[int] = []

    def using_threads(self, n):
        from contextlib import contextmanager

        @contextmanager
        def block():
            before, self.threads = self.threads, n
            try:
                yield
            finally:
                self.threads = before

        return block()


def test_limit_gives_the_encoder_the_chosen_threads_and_takes_them_back():
    clock = FakeClock()
    q = threads_with(clock)
    encoder = ThreadedEncoder()
    clock.advance(1.0, others_busy_cores=0.0)
    with q.limit(encoder) as n:
        assert n == 2 and encoder.threads == 2
    assert encoder.threads == 1
    clock.advance(1.0, others_busy_cores=1.0)
    with q.limit(encoder) as n:
        assert n == 1 and encoder.threads == 1


def test_limit_accepts_encoders_without_threads():
    q = threads_with(FakeClock())
    with q.limit(object()) as n:
        assert n == 1
