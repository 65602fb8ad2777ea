"""Placeholder until the app shell lands."""


def run_app(args) -> int:
    from textual.app import App
    from textual.widgets import Static

    class _Placeholder(App):
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self):
            yield Static("lca-tui — the app is being built. Press q to quit.")

    _Placeholder().run()
    return 0
