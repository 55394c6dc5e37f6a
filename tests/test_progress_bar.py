"""The CLI's tqdm adapter of lyra.progress callbacks."""

from lyra.cli.progress_bar import progress_bar


def test_reported_fractions_and_text_show_on_stderr(capsys):
    with progress_bar("lyra test") as progress:
        progress(0.5, "half way")
        progress(1.0, "done")
    err = capsys.readouterr().err
    assert "lyra test" in err and "50%" in err and "100%" in err and "half way" in err


def test_disabled_bar_is_no_callback():
    with progress_bar("lyra test", enabled=False) as progress:
        assert progress is None


def test_a_long_call_prints_its_estimate_at_the_first_report(capsys, monkeypatch):
    import lyra.cli.progress_bar as bar_module

    clock = iter([1000.0, 1030.0])  # the bar opens, then the first of 100 steps reports after 30 s
    monkeypatch.setattr(bar_module, "monotonic", lambda: next(clock))
    with progress_bar("lyra render") as progress:
        progress(0.01, "frame 1/100")
    err = capsys.readouterr().err
    assert "lyra render: estimated 50 min in all, done at about" in err


def test_a_short_call_prints_no_estimate(capsys, monkeypatch):
    import lyra.cli.progress_bar as bar_module

    clock = iter([1000.0, 1000.5])  # half a second for a quarter: 2 s in all
    monkeypatch.setattr(bar_module, "monotonic", lambda: next(clock))
    with progress_bar("lyra render") as progress:
        progress(0.25, "frame 1/4")
    assert "estimated" not in capsys.readouterr().err
