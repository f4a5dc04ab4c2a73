"""What several test files share: the command line called in-process."""
from hardbatch import cli


def run_main(argv, capsys):
    """cli.main in-process: (exit status, stdout, stderr). Any other exception fails the test as it is."""
    try:
        status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err
