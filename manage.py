#!/usr/bin/env python
"""Run the example project (a small XO Black stand-in) that hosts xo_recommender."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
