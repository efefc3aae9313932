"""The app's screens: main, launch form, run, compare, help and confirmations."""
