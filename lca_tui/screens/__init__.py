"""Modal screens: help, record picker, model picker."""
