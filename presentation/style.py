"""One palette and one plotly layout for every figure the app, the CLI and the reports draw."""
from __future__ import annotations

# Okabe–Ito, colour-blind safe; one colour per method, in a fixed order.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
BLUE, ORANGE, GREEN, VERMILION = PALETTE[:4]
GREY = "#7f7f7f"
LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=40, b=10), font=dict(size=13),
              legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))


def colour(i: int) -> str:
    """The i-th method's colour (the palette repeats past its end)."""
    return PALETTE[i % len(PALETTE)]


def headline(text: str | None) -> dict:
    """A title above the legend (which sits just above the plot area)."""
    return dict(text=text, y=0.98, yanchor="top", x=0, xanchor="left", font=dict(size=15))
