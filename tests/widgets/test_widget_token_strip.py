"""TokenStrip: visible whitespace, value colours, wrapping and legend."""

import numpy as np
from textual.app import App, ComposeResult

from widgets import TokenStrip, wrap_tokens
from widgets.colors import NAN_COLOR, ramp
from widgets.token_strip import N_COLORS


class StripApp(App):
    CSS = "TokenStrip { width: 30; }"

    def compose(self) -> ComposeResult:
        yield TokenStrip(label="surprise (nats)")


def test_wrap_tokens_greedy_with_forced_breaks():
    assert wrap_tokens(["ab", "cd", "ef"], 5) == [[0, 1], [2]]
    assert wrap_tokens(["toolongtoken", "x"], 5) == [[0], [1]]
    assert wrap_tokens(["a↵", "b"], 80, breaks=[True, False]) == [[0], [1]]
    assert wrap_tokens([], 10) == [[]]


async def test_token_strip_wraps_and_colours_by_value():
    app = StripApp()
    async with app.run_test(size=(100, 30)) as pilot:
        strip = app.query_one(TokenStrip)
        await pilot.pause()
        assert "no tokens" in strip.render_line(0).text
        tokens = ["The", " Eiffel", " Tower", " is", " located", " in", " the", " city", " of", "\n", "Paris"]
        values = [0.0, 8.0, 1.0, 2.0, 4.0, 0.5, 0.2, 3.0, 0.1, 6.0, float("nan")]
        strip.set_tokens(tokens, values, vmax=8.0)
        await pilot.pause()
        lines = [strip.render_line(y).text.rstrip() for y in range(strip.size.height)]
        assert strip.size.height == len(lines) >= 4  # wrapped token lines + legend
        assert all(len(line) <= 30 for line in lines)
        assert lines[0].startswith("The ␣Eiffel ␣Tower")
        joined = " ".join(lines[:-1]).split()
        assert joined == ["The", "␣Eiffel", "␣Tower", "␣is", "␣located", "␣in", "␣the",
                          "␣city", "␣of", "↵", "Paris"]
        assert lines[-2] == "Paris"  # the newline token forces a break
        assert lines[-1].startswith("0 ") and "8" in lines[-1] and "surprise (nats)" in lines[-1]
        colors = ramp("viridis", N_COLORS)
        segs = {s.text: s.style for y in range(len(lines) - 1) for s in strip.render_line(y)}
        assert segs["The"].bgcolor == colors[0]
        assert segs["␣Eiffel"].bgcolor == colors[-1]
        assert segs["Paris"].bgcolor == NAN_COLOR


async def test_token_strip_without_values_and_default_vmax():
    app = StripApp()
    async with app.run_test(size=(100, 30)) as pilot:
        strip = app.query_one(TokenStrip)
        strip.set_tokens(["a", " b"], None)
        await pilot.pause()
        assert strip.size.height == 1 and strip.render_line(0).text.startswith("a ␣b")
        strip.set_tokens(["a", " b"], np.array([1.0, 2.0]))
        await pilot.pause()
        assert strip.render_line(1).text.split()[1] == "2"
        try:
            strip.set_tokens(["a"], [1.0, 2.0])
        except ValueError:
            return
        raise AssertionError("expected ValueError")


async def test_new_tokens_relayout_only_when_the_height_changes():
    """Every keystroke sets new tokens; a full layout is asked for only when the strip needs more
    (or fewer) lines, otherwise a repaint."""
    app = StripApp()
    async with app.run_test(size=(100, 30)) as pilot:
        strip = app.query_one(TokenStrip)
        await pilot.pause()
        layouts = []
        real = strip.refresh

        def spy(*args, **kw):
            layouts.append(kw.get("layout", False))
            return real(*args, **kw)

        strip.refresh = spy
        asked = []
        for tokens in (["The", " cat"], ["The", " dog"], ["word"] * 20):
            layouts.clear()
            strip.set_tokens(tokens, [1.0] * len(tokens))  # calls refresh synchronously, once
            asked.append(layouts[-1])
            await pilot.pause()
        # 'no tokens' -> one line + legend (taller), same height, wrapped onto more lines
        assert asked == [True, False, True]
        assert strip.size.height == strip.get_content_height(None, None, strip.content_region.width)


async def test_cached_token_styles_equal_the_plain_style_per_token():
    """The strip builds one style per colour index and reuses it; every token's style must equal the
    style built directly from its value's colour (a theme change rebuilds the table)."""
    from rich.style import Style

    from widgets.colors import contrast_text

    app = StripApp()
    async with app.run_test(size=(100, 30)) as pilot:
        strip = app.query_one(TokenStrip)
        values = [0.0, 0.3, 1.7, 2.2, float("nan"), 5.0, 4.99, 0.01]
        strip.set_tokens([f"t{i}" for i in range(len(values))], values, vmax=5.0)
        await pilot.pause()
        for theme in (app.theme, "textual-light"):
            app.theme = theme
            await pilot.pause()
            base = strip.rich_style
            colors = ramp("viridis", N_COLORS)
            for i, v in enumerate(values):
                bg = NAN_COLOR if v != v else colors[int(np.clip(np.floor(v / 5.0 * (N_COLORS - 1) + 0.5), 0, N_COLORS - 1))]
                assert strip._token_style(i, base) == base + Style(bgcolor=bg, color=contrast_text(bg))
