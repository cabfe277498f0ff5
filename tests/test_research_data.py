"""The gaussian generator's controlled structure (spectra, rotation, true weights, noise), each
checked on a large draw against the asked values; bad settings refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run_cli

from linlab.checks.preflight import problem
from linlab.data.streaming import StreamingGaussian
from linlab.data.synthetic import gaussian
from linlab.train import config_dir

N = 200_000
SPECTRA = [
    ({"covariance": "power_law", "covariance_decay": 1.5}, [i**-1.5 for i in range(1, 7)]),
    ({"covariance": "condition", "condition_number": 50.0}, [50.0 ** (-i / 5) for i in range(6)]),
    ({"covariance": "spiked", "spike": 4.0, "n_spikes": 2}, [5.0, 5.0, 1.0, 1.0, 1.0, 1.0]),
]


def descending_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.eigvalsh(matrix))[::-1]


@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize(("settings", "asked"), SPECTRA, ids=lambda v: str(v)[:30])
def test_empirical_covariance_has_the_asked_spectrum(settings, asked, rotate):
    data = gaussian(n_samples=N, n_features=6, rotate=rotate, seed=1, **settings)
    x = data.x.numpy()
    empirical = x.T @ x / N
    np.testing.assert_allclose(descending_eigenvalues(empirical), asked, rtol=0.05)
    sigma = data.covariance.numpy()
    np.testing.assert_allclose(descending_eigenvalues(sigma), asked, rtol=1e-12)
    np.testing.assert_allclose(empirical, sigma, atol=0.05 * max(asked))
    off_diagonal = np.abs(sigma - np.diag(np.diag(sigma))).max()
    assert (off_diagonal > 0.01) == rotate  # a rotation mixes the axes, none keeps them


def test_condition_number_is_the_asked_one():
    data = gaussian(n_samples=N, n_features=8, covariance="condition", condition_number=30.0)
    x = data.x.numpy()
    eigenvalues = descending_eigenvalues(x.T @ x / N)
    assert eigenvalues[0] / eigenvalues[-1] == pytest.approx(30.0, rel=0.05)
    exact = descending_eigenvalues(data.covariance.numpy())
    assert exact[0] == pytest.approx(1.0) and exact[0] / exact[-1] == pytest.approx(30.0)
    # log-uniform: equal ratios between neighbours
    np.testing.assert_allclose(exact[:-1] / exact[1:], 30.0 ** (1 / 7), rtol=1e-12)


def test_sparse_weights_have_s_non_zeros_and_the_asked_norm():
    data = gaussian(n_features=40, weights_kind="sparse", n_nonzero=3, signal_norm=2.0, seed=5)
    beta = np.array(data.true_weights)
    assert np.count_nonzero(beta) == 3
    assert np.linalg.norm(beta) == pytest.approx(2.0)


def test_power_law_weights_decay_along_the_eigenbasis():
    data = gaussian(
        n_features=6, covariance="power_law", rotate=True, weights_kind="power_law",
        weights_decay=0.75, signal_norm=1.0, seed=2,
    )  # fmt: skip
    _, vectors = np.linalg.eigh(data.covariance.numpy())
    coefficients = np.abs(vectors[:, ::-1].T @ np.array(data.true_weights))  # by λ descending
    expected = np.arange(1, 7) ** -0.75
    np.testing.assert_allclose(coefficients, expected / np.linalg.norm(expected), rtol=1e-9)


def test_student_t_noise_has_the_asked_variance_and_heavy_tails():
    data = gaussian(n_samples=N, n_features=2, noise=0.7, noise_kind="student_t", noise_df=5.0)
    eps = (data.y - data.x @ torch.tensor(data.true_weights, dtype=torch.float64)).numpy()
    assert data.noise_variance == pytest.approx(0.49)
    assert eps.var() == pytest.approx(0.49, rel=0.03)
    kurtosis = np.mean((eps - eps.mean()) ** 4) / eps.var() ** 2
    assert kurtosis > 5  # t₅: 9; a Gaussian: 3
    quiet = gaussian(n_samples=100, n_features=2, noise=0.7, noise_kind="none")
    exact = quiet.x @ torch.tensor(quiet.true_weights, dtype=torch.float64)
    assert torch.equal(quiet.y, exact) and quiet.noise_variance == 0.0


def test_default_draw_is_the_plain_one():
    """β, then X, then the noise from one generator seeded by the seed, as before."""
    gen = torch.Generator().manual_seed(7)
    beta = torch.randn(4, generator=gen, dtype=torch.float64)
    x = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    y = x @ beta + 0.5 + 0.1 * torch.randn(50, generator=gen, dtype=torch.float64)
    data = gaussian(n_samples=50, n_features=4, bias=0.5, seed=7)
    assert torch.equal(data.x, x) and torch.equal(data.y, y)
    assert torch.equal(data.covariance, torch.eye(4, dtype=torch.float64))


def test_streaming_draws_the_same_design():
    settings = {"covariance": "condition", "condition_number": 20.0, "rotate": True}
    settings |= {"noise_kind": "student_t", "noise": 0.3, "weights_kind": "sparse", "n_nonzero": 2}
    stream = StreamingGaussian(n_samples=60_000, n_features=4, batch_size=1000, seed=3, **settings)
    whole = gaussian(n_samples=10, n_features=4, seed=3, **settings)
    described = stream.description()
    assert torch.equal(described.covariance, whole.covariance)
    assert described.true_weights == whole.true_weights and described.noise_variance == 0.09
    x, y = (torch.cat(parts) for parts in zip(*map(stream.block, range(60)), strict=True))
    empirical = (x.T @ x / len(x)).numpy()
    np.testing.assert_allclose(empirical, whole.covariance.numpy(), atol=0.03)
    residual = y - x @ torch.tensor(whole.true_weights, dtype=torch.float64)
    assert float(residual.var()) == pytest.approx(0.09, rel=0.05)


REFUSED = [
    (["data.covariance=power_law", "data.covariance_decay=-1"], "data.covariance_decay=-1"),
    (["data.condition_number=0.5"], "data.condition_number=0.5"),
    (["data.weights_kind=sparse", "data.n_nonzero=6"], "data.n_nonzero=6"),
    (["data.n_nonzero=0"], "data.n_nonzero=0"),
    (["data.noise_kind=student_t", "data.noise_df=2"], "data.noise_df=2"),
    (["data.covariance=banana"], "data.covariance='banana'"),
    (["data.weights_kind=dense"], "data.weights_kind='dense'"),
    (["data.noise_kind=cauchy"], "data.noise_kind='cauchy'"),
    (["data.weights_decay=-0.5"], "data.weights_decay=-0.5"),
    (["data.signal_norm=-1"], "data.signal_norm=-1"),
]


@pytest.mark.parametrize(("overrides", "fragment"), REFUSED, ids=lambda v: str(v))
def test_bad_design_values_are_refused_in_one_line(overrides, fragment):
    message = problem(overrides, config_dir())
    assert message is not None and "\n" not in message and fragment in message
    assert "allowed" in message


def test_cli_refuses_a_bad_spectrum_before_any_folder(tmp_path):
    args = ["data.covariance=condition", "data.condition_number=0.1"]
    proc = run_cli([*args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "data.condition_number=0.1" in lines[0] and ">= 1" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_presets_and_over_parameterised_designs_pass_the_checks():
    assert problem(["experiment=double_descent", "data.n_features=300"], config_dir()) is None
    assert problem(["experiment=critical_batch", "data.batch_size=1"], config_dir()) is None
