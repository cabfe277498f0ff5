"""A single run's HParams experiment summary, read back with TensorBoard's own reader."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata

from linlab import tags


def test_a_single_run_names_its_final_values_as_metrics_and_its_chosen_keys(train_in, tmp_path):
    results = train_in(
        ["optimizer.lr=0.05", "trainer.max_epochs=2", "callbacks.figures.enabled=false"]
    )
    events = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "run"))
    events.Reload()
    content = events.PluginRunToTagToContent(metadata.PLUGIN_NAME)["."]
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    recorded = [k for k in ("val_loss", "test_loss", "train_loss", "param_distance")
                if isinstance(results.get(k), float)]  # fmt: skip
    shown = [m.display_name for m in experiment.metric_infos]
    assert shown[0] == "final/val_loss" and set(shown) >= {f"final/{k}" for k in recorded}
    scalars = events.GetAccumulator(".").Tags()["scalars"]
    for metric in experiment.metric_infos:  # each metric is a scalar the run wrote
        assert metric.name.tag in scalars and metric.name.tag.startswith("value/")
    value = events.Scalars(".", tags.value("val_loss"))[-1].value
    assert abs(value - results["val_loss"]) <= 1e-6 * abs(results["val_loss"])
    assert not {tags.param("b"), tags.TRAIN_LOSS, tags.VAL_LOSS} & {
        m.name.tag for m in experiment.metric_infos
    }
    infos = {h.name: h for h in experiment.hparam_infos}
    chosen = {"optimizer.lr", "trainer.max_epochs", "callbacks.figures.enabled"}
    chosen.add("trainer.enable_progress_bar")  # conftest's QUIET
    assert {n for n, h in infos.items() if h.differs} == chosen  # the command line's keys
    lr = infos["optimizer.lr"].domain_interval
    assert lr.min_value == lr.max_value == 0.05
