"""Presentation: attribution maps as pictures and plotly figures, as pure functions of arrays.

- `overlay`: colour maps and the heatmap-over-photo blend (numpy only).
- `figures`: the figures of one explanation (IG along the path, error against steps, top classes, gradient map).
- `lessons`: the figures of the Axioms and Trust pages (toy functions, randomisation, deletion/insertion).
- `style`: the one palette and layout they all use.
Shared by the app, the CLI and the tests; nothing here imports streamlit or computes an attribution.
"""
