"""Home: what the app does, and the bundled model's card."""

import pandas as pd
import streamlit as st

from core.paths import BUNDLED_MODEL
from core.registry import ModelError, load_history, model_path, read_metadata
from ui.cards import (confidence_summary, effect_costs, external_confidence,
                      external_intervals, external_results, metrics_table, set_note, shown,
                      training_summary)
from ui.figures_compare import effect_cost_figure
from ui.routing import ensure_app_navigation
from ui.tables import right_aligned_columns

ensure_app_navigation()


def show_metrics(table: pd.DataFrame) -> None:
    st.dataframe(shown(table), width="stretch", column_config=right_aligned_columns(table.columns))


st.title("xrd-classify")
st.markdown(
    "Which **space group** (and crystal system) does a powder X-ray diffraction pattern "
    "belong to? This app trains neural networks on simulated patterns and applies them to "
    "measured ones.\n\n"
    "- **Datasets** — browse what the models learn from; build datasets from random "
    "crystals, CIF files or the Materials Project.\n"
    "- **Training** — train the original report's models or the residual CNN, with live curves.\n"
    "- **Compare models** — metrics beside baselines, confusion matrices, per-class reports.\n"
    "- **Classify patterns** — upload RRUFF, `.xy`, `.csv`, `.xrdml`, DIF or CIF files and get "
    "ranked space groups, weighed against the unit cell indexed from the peaks and its "
    "systematic absences."
)

st.header("Bundled model")
try:
    meta = read_metadata(model_path(BUNDLED_MODEL))
except ModelError as exc:
    st.error(f"The bundled model cannot be read: {exc}")
    st.stop()

if meta.description:
    st.write(meta.description)
facts = training_summary(meta, epochs_run=len(load_history(meta.name)) or None)
st.table(pd.DataFrame({"value": list(facts.values())}, index=list(facts.keys())))

st.subheader("Held-out synthetic test split")
st.caption("Percent. Baselines: always predicting the most common class, and guessing with the "
           "test set's own class frequencies.")
table = metrics_table(meta.metrics)
if table.empty:
    st.info("This model has no test-split metrics.")
else:
    show_metrics(table)

external = external_results(meta.name)
confidence = external_confidence(meta.name)
intervals = external_intervals(meta.name)
if external:
    st.caption("On the real sets below the model is scored as the Classify page uses it by "
               "default: each pattern indexed, and the network's ranking re-weighted by a "
               "convincing cell's lattice and systematic absences. The network alone is in "
               "benchmarks/results.md.")
for set_name, metrics in external.items():
    st.subheader(set_name)
    note = set_note(set_name)
    if note:
        st.caption(note)
    show_metrics(metrics_table(metrics, intervals.get(set_name)))
    if set_name in intervals:
        st.caption("The 95 % interval is the range the model's value would likely take on "
                   "another set like this one (bootstrap over its patterns).")
    if set_name in confidence:
        st.caption(confidence_summary(confidence[set_name]))
if not external:
    st.caption("Real-data results appear here after `python benchmarks/accuracy.py` has run.")

set_name, costs = effect_costs(meta.name)
if not costs.empty:
    st.subheader("What makes a pattern hard")
    st.plotly_chart(effect_cost_figure(costs), key="home_effects", width="stretch")
    quiet, every = costs.iloc[0], costs.iloc[-1]
    st.caption(
        f"The same {set_name} patterns (project-generated, never trained on) rendered with "
        f"every measurement effect switched off ({quiet['top-1 %']:.1f} % top-1, "
        f"{quiet['crystal system %']:.1f} % crystal system), with one effect at a time at the "
        f"size the model trained with, and with all of them ({every['top-1 %']:.1f} % and "
        f"{every['crystal system %']:.1f} %). From `benchmarks/robustness.py`; the Datasets "
        "page previews each effect.")
