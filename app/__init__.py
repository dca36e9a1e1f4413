"""DigitLab's Qt application: main window, worker thread, menus, settings, entry points."""
