from ganzoo.cli import entry_point

entry_point()
