"""Modal screens: help, record picker, model picker, run directory, experiment, resume-or-new."""
