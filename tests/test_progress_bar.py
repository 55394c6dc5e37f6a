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
