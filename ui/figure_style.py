"""Layout shared by the app's figures, so every chart looks and behaves the same."""

import plotly.graph_objects as go

# Horizontal legends sit at the bottom of the figure, below the x-axis title (positioned in the
# container, so plotly shrinks the plot area to make room); titles keep the top margin.
LEGEND_BELOW = dict(orientation="h", xanchor="left", x=0, yref="container", yanchor="bottom", y=0)
LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, legend=LEGEND_BELOW)


def empty_figure(title: str, message: str) -> go.Figure:
    """A titled figure that says why there is nothing to draw."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font=dict(size=14, color="grey"))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure.update_layout(title=title, **LAYOUT)
