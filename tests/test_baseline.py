"""The explicit-L2 baseline without BN, the validation split, and deep networks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bnreg import build_mlp, data, experiment, files, report, sweep
from keras_bnreg.config import RunConfig
from keras_bnreg.studies import Settings, baseline
from keras_bnreg.studies import settings as settings_module


def test_model_without_bn_and_its_l2_penalty():
    model = build_mlp((16,), batchnorm=False, l2=0.01, seed=2)
    assert not any(
        "batch_normalization" in type(layer).__name__.lower() or layer.name.endswith("_bn")
        for layer in model.layers
    )
    kernels = [
        layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)
    ]
    penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert penalty == pytest.approx(0.01 * sum(float((k**2).sum()) for k in kernels), rel=1e-5)
    assert build_mlp((16,), batchnorm=False).losses == []


def test_hold_out_is_a_disjoint_seeded_split(small_dataset):
    train, (x_val, y_val) = data.hold_out(small_dataset, 0.25, seed=3)
    assert len(x_val) == 150 and len(train.x_train) == 450
    rows = {row.tobytes() for row in small_dataset.x_train}
    assert {row.tobytes() for row in x_val} | {row.tobytes() for row in train.x_train} == rows
    assert not {row.tobytes() for row in x_val} & {row.tobytes() for row in train.x_train}
    np.testing.assert_array_equal(data.hold_out(small_dataset, 0.25, seed=3)[1][0], x_val)
    with pytest.raises(data.DataError, match="validation fraction"):
        data.hold_out(small_dataset, 1.5)


def test_no_bn_run_validates_on_held_out_data_and_scores_the_test_split(tmp_path, small_dataset):
    config = RunConfig(
        hidden=(8,),
        epochs=1,
        batchnorm=False,
        l2=1e-3,
        lr=1e-3,
        validation_fraction=0.2,
        out=str(tmp_path),
        models_dir=str(tmp_path / "models"),
        run_name="nobn",
    )
    result = experiment.run(config, dataset=small_dataset, verbose=0)
    assert result.status == "completed"
    final = result.summary["final"]
    # The test score is the saved model's on the test split; validation is on the held-out
    # 20% of the training split (a different number: the test split stayed unseen).
    model = keras.models.load_model(result.model_path)
    _, (x_validation, y_validation) = data.hold_out(small_dataset, 0.2, seed=config.seed)
    for x, y, key in (
        (small_dataset.x_test, small_dataset.y_test, "test_accuracy"),
        (x_validation, y_validation, "val_accuracy"),
    ):
        accuracy = np.mean(model.predict(x, verbose=0).argmax(axis=1) == y)
        assert final[key] == pytest.approx(accuracy, abs=1e-6), key
    nodes = files.read_csv(tmp_path / "nobn" / "nodes.csv")
    assert len(nodes) == 8 and all(node["alpha"] > 0 for node in nodes)
    assert all(np.isnan(node["gamma"]) and np.isnan(node["l2_bn"]) for node in nodes)
    # The model trained on (and alpha was measured on) the 80% left after the hold-out.
    assert result.summary["data"]["n_train"] == 480


@pytest.mark.slow
def test_deep_network_reports_every_layer(tmp_path, small_dataset):
    config = RunConfig(
        hidden=(8, 8, 8), epochs=1, out=str(tmp_path), save_model=False, run_name="deep"
    )
    result = experiment.run(config, dataset=small_dataset, verbose=0)
    assert result.status == "completed"
    history = files.read_csv(tmp_path / "deep" / "history.csv")
    for layer in ("hidden2", "hidden3", "output"):
        assert history[-1][f"{layer}_alpha_mean"] > 0
        assert len(files.read_csv(tmp_path / "deep" / f"nodes_{layer}.csv")) == (
            10 if layer == "output" else 8
        )


@pytest.mark.slow
def test_baseline_selects_the_rate_with_the_best_validation_accuracy(
    tmp_path, small_npz, monkeypatch
):
    monkeypatch.setattr(baseline, "L2_RATES", (1e-4, 1.0))
    monkeypatch.setattr(baseline, "AMPLITUDES", (1.0,))
    settings = Settings(out=str(tmp_path), data=str(small_npz), epochs=1, seeds=1, hidden=(8,))
    configs = baseline.configs(settings)
    assert len(configs) == 3
    outcomes = sweep.run_sweep(configs, jobs=1, progress=False)
    assert {o.status for o in outcomes} == {"completed"}
    settings_module.record_request(tmp_path, {"baseline": settings})
    report.build_outputs(tmp_path)
    rows = files.read_csv(tmp_path / "baseline.csv")
    candidates = [r for r in rows if r["l2_rate"] is not None]
    best = max(candidates, key=lambda r: r["val_accuracy"])
    assert [r["selected"] for r in rows] == [str(r is best) for r in rows]
    assert "## Baseline" in (tmp_path / "REPORT.md").read_text()
    assert (tmp_path / "baseline.png").stat().st_size > 0
