"""The Server-Timing header of the gateway's answers: phases add up, counts ride along, and it reads back."""

from gateway.timing import Timings, parse


def test_phases_add_up_and_read_back_with_their_counts() -> None:
    timings = Timings()
    timings.add("rank", 12.34)
    timings.add("one_by_one", 5.0)
    timings.add("one_by_one", 2.5)
    timings.count("one_by_one", 7)
    with timings.phase("encode"):
        pass
    header = timings.header()
    assert header.startswith('rank;dur=12.3, one_by_one;dur=7.5;desc="7", encode;dur=')
    parsed = parse(header)
    assert parsed["rank"] == (12.3, None) and parsed["one_by_one"] == (7.5, 7)
    assert 0 <= parsed["encode"][0] < 1000 and parsed["encode"][1] is None


def test_a_header_of_someone_else_never_raises() -> None:
    assert parse("") == {}
    assert parse('cache;desc="hit", db;dur=abc, ;dur=1, app;dur=2.5') == {"app": (2.5, None)}
