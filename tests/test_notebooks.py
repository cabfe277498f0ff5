"""The example notebooks, run cell by cell in a real Jupyter kernel (nbclient + ipykernel).

Each tutorial notebook's numbers are checked against its seed's own cells, copied here with
their data passed in (and the seed's mistakes corrected, see test_tutorial_mistakes.py); the
sweep notebook against the jobs' results.json files read with ``json``. One kernel runs all
six notebooks (a fresh kernel costs seconds), in a temporary working folder.
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags
from linlab.data.synthetic import gaussian, line_1d

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """``notebooks(name)`` runs ``examples/<name>.ipynb`` and returns its code cells' outputs."""
    folder = tmp_path_factory.mktemp("examples")
    client = NotebookClient(
        nbformat.v4.new_notebook(),
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    ran: dict[str, list] = {}

    def run(name: str) -> list:
        if name not in ran:
            book = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
            client.nb = book
            for index, cell in enumerate(book.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
            ran[name] = [c.outputs for c in book.cells if c.cell_type == "code"]
        return ran[name]

    with client.setup_kernel():
        run.folder = folder
        yield run


def result(outputs: list) -> object:
    """A cell's returned value, read back from its text output."""
    (value,) = [o for o in outputs if o.output_type == "execute_result"]
    return ast.literal_eval(value.data["text/plain"])


def shows_png(outputs: list) -> bool:
    return any("image/png" in o.get("data", {}) for o in outputs)


def progress_lines(outputs: list) -> list[str]:
    """The progress display's last state (nbclient applies its in-place updates)."""
    return [o.data["text/plain"] for o in outputs if o.output_type == "display_data"]


def scalars(run_dir: Path, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def seed_000_slope(X, Y, w0, lr, epochs):
    """Seed 000, "PyTorch Slope": its cells, on the data given (plots left out)."""
    w = torch.tensor(w0, requires_grad=True)

    def forward(x):
        return w * x

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    lr_neg = -lr
    weight, cost = [], []
    for _epoch in range(epochs):
        Yhat = forward(X)
        loss = criterion(Yhat, Y)
        loss.backward()
        w.data += (lr_neg) * w.grad.data
        w.grad.data.zero_()
        weight.append(w.data.item())
        cost.append(loss.item())
    return weight, cost


def seed_000_cost_surface(X, Y, w0, b0, lr, epochs):
    """Seed 000, "Cost Surface": ``forward(x) = w * x + b``, the same update on w and b."""
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    for _epoch in range(epochs):
        loss = torch.mean((w * X + b - Y) ** 2)
        loss.backward()
        w.data = w.data - lr * w.grad.data
        b.data = b.data - lr * b.grad.data
        w.grad.data.zero_()
        b.grad.data.zero_()
    return w.item(), b.item()


def seed_001_autograd(n_iters):
    """Seed 001's autograd cell (the NumPy one misses 1/N): w and loss per epoch."""
    X = torch.tensor([1, 2, 3, 4], dtype=torch.float32)
    Y = torch.tensor([2, 4, 6, 8], dtype=torch.float32)
    w = torch.tensor(0.0, dtype=torch.float32, requires_grad=True)
    learning_rate, ws, losses = 0.01, [], []
    for _epoch in range(n_iters):
        y_pred = w * X
        l = ((y_pred - Y) ** 2).mean()  # noqa: E741 - the seed's name
        l.backward()
        with torch.no_grad():
            w -= learning_rate * w.grad
        w.grad.zero_()
        ws.append(w.item())
        losses.append(l.item())
    return ws, losses


def seed_002_optim(n_iters):
    """Seed 002's ``torch.optim`` cell: nn.MSELoss and SGD(lr=0.01) on ``W * x``."""
    X = torch.tensor([1, 2, 3, 4], dtype=torch.float32)
    Y = torch.tensor([2, 4, 6, 8], dtype=torch.float32)
    W = torch.tensor(0.0, dtype=torch.float32, requires_grad=True)
    loss = torch.nn.MSELoss()
    optimizer = torch.optim.SGD([W], lr=0.01)
    losses = []
    for _epoch in range(n_iters):
        l = loss(Y, W * X)  # noqa: E741 - the seed's name
        l.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(l.item())
    return W.item(), losses


def seed_003_autograd(X, y, n):
    """Seed 003: ``beta`` from [1, 0], 20 steps of ``beta -= 0.1 * beta.grad`` on the RSS/n."""
    beta = torch.tensor([[1.0], [0]], requires_grad=True)
    for _i in range(20):
        y_hat = X @ beta
        loss = torch.mean((y - y_hat) ** 2)
        loss.backward()
        with torch.no_grad():
            beta -= 0.1 * beta.grad
        beta.grad.zero_()
    return beta.detach().view(2).tolist()


def seed_004_sgd(steps):
    """Seed 004's ``sgd``: squared loss / 2 summed, ``param -= lr * param.grad / batch_size``."""
    X, y = torch.eye(3), torch.tensor([1.0, 2, 3])
    w = torch.tensor([1.0, 1, 1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    lr, batch_size = 1, 3
    for _ in range(steps):
        y_hat = X @ w + b
        l = ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).sum()  # noqa: E741 - the seed's name
        l.backward()
        with torch.no_grad():
            for param in (w, b):
                param -= lr * param.grad / batch_size
                param.grad.zero_()
    return w.tolist(), b.item()


def test_000_slope_and_cost_surface(notebooks):
    cells = notebooks("000_slope_and_cost_surface")
    data = line_1d(weights=[-3.0], noise=0.1, seed=0)  # the preset's draw of the seed's data
    weight, cost = seed_000_slope(data.x.float(), data.y.float().view(-1, 1), -10.0, 0.1, 4)
    assert result(cells[1]) == pytest.approx([weight[-1]], abs=1e-5)
    run_dir = notebooks.folder / "outputs" / "line_1d"
    w_steps = scalars(run_dir, tags.param("w0"))
    assert [w_steps[k] for k in (1, 2, 3, 4)] == pytest.approx(weight, abs=1e-4)
    loss_steps = scalars(run_dir, tags.TRAIN_LOSS)
    assert [loss_steps[k] for k in (0, 1, 2, 3)] == pytest.approx(cost, rel=1e-5)
    assert shows_png(cells[3]) and shows_png(cells[5])

    data = line_1d(weights=[1.0], bias=-1.0, noise=0.1, seed=0)
    w, b = seed_000_cost_surface(data.x.float(), data.y.float().view(-1, 1), -15.0, -10.0, 0.1, 15)
    (w_nb,), b_nb = result(cells[4])
    assert w_nb == pytest.approx(w, abs=1e-5) and b_nb == pytest.approx(b, abs=1e-5)
    surface_dir = notebooks.folder / "outputs" / "cost_surface" / "figures"
    assert any("surface" in p.name for p in surface_dir.glob("*.png"))


def test_001_two_x(notebooks):
    cells = notebooks("001_two_x_by_hand")
    ws, losses = seed_001_autograd(100)
    assert result(cells[3]) == pytest.approx(round(5 * ws[-1], 3), abs=1e-9)
    text = cells[2][0].data["text/plain"]
    assert "0.300000" in text  # w after the first step, as the autograd cell prints it
    run_dir = notebooks.folder / "outputs" / "two_x"
    w_steps = scalars(run_dir, tags.param("w0"))
    assert [w_steps[k] for k in range(1, 101)] == pytest.approx(ws, abs=1e-5)
    loss_steps = scalars(run_dir, tags.TRAIN_LOSS)
    assert [loss_steps[k] for k in range(10)] == pytest.approx(losses[:10], rel=1e-4)
    assert shows_png(cells[4])


def test_002_two_x_optim(notebooks):
    cells = notebooks("002_two_x_autograd_and_optim")
    W, losses = seed_002_optim(10)
    assert result(cells[3]) == pytest.approx([W], abs=1e-6)
    loss_steps = scalars(notebooks.folder / "outputs" / "two_x_10", tags.TRAIN_LOSS)
    assert [loss_steps[k] for k in range(10)] == pytest.approx(losses, rel=1e-5)
    assert losses[1] != 30.0  # not the typo's frozen loss


def test_003_multi_feature(notebooks):
    cells = notebooks("003_multi_feature")
    data = gaussian(n_samples=50, n_features=2, weights=[-1.0, 2.0], noise=0.1, seed=0)
    beta = seed_003_autograd(data.x.float(), data.y.float().view(-1, 1), 50)
    weights, true_weights = result(cells[1])
    assert weights == pytest.approx(beta, abs=1e-5) and true_weights == [-1.0, 2.0]
    assert shows_png(cells[3])


def test_004_minibatch_eye3(notebooks):
    cells = notebooks("004_minibatch_eye3")
    w, b = seed_004_sgd(4)
    weights, bias = result(cells[1])
    assert weights == [round(v, 4) for v in w] == [0.4444, 1.2469, 2.0494]
    assert bias == round(b, 4) == 0.7407
    (line,) = progress_lines(cells[1])
    assert line.startswith("epoch 4/4") and "step 4/4" in line
    assert shows_png(cells[3])


def test_lr_batch_sweep(notebooks):
    cells = notebooks("lr_batch_sweep")
    sweep_dir = notebooks.folder / "multirun" / "lr_batch"
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/results.json")}
    assert len(results) == 4 and all(r["status"] == "ok" for r in results.values())
    lines = progress_lines(cells[1])  # one per stacked group: the two batch sizes
    assert len(lines) == 2 and all(line.startswith("epoch 3/3") for line in lines)
    table = cells[2][0].data["text/plain"]
    assert all(name in table for name in results)
    assert shows_png(cells[3]) and shows_png(cells[4])
    best = min(results, key=lambda name: results[name]["val_loss"])
    name, val_loss = result(cells[5])
    assert name == best and math.isclose(val_loss, results[best]["val_loss"])
    weights = cells[6][0].data["text/plain"]
    assert all(f"{w:.4f}" in weights for w in results[best]["weights"])


LONG_RUN = (
    "import linlab\n"
    'run = linlab.run("experiment=two_x", "trainer.max_epochs=1000000", outdir="long",\n'
    "    callbacks__figures__enabled=False, callbacks__last_checkpoint__min_interval_s=0)"
)


def test_the_kernels_interrupt_stops_a_run_as_ctrl_c_does(tmp_path):
    """Jupyter's stop button (SIGINT to the kernel): the run ends as after Ctrl-C, is returned
    with status interrupted and the resume call printed; a cell that would train something
    else into that folder is refused (the same cell again would continue the run, as the same
    command does on the command line)."""
    other = LONG_RUN.replace(
        '"trainer.max_epochs=1000000"', '"trainer.max_epochs=1000000", "optimizer.lr=0.05"'
    )
    cells = [nbformat.v4.new_code_cell(s) for s in (LONG_RUN, "run.status", other)]
    client = NotebookClient(
        nbformat.v4.new_notebook(cells=cells),
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    checkpoint = tmp_path / "long" / "checkpoints" / "last.ckpt"

    async def interrupt_once_an_epoch_is_saved() -> None:
        async with client.async_setup_kernel():
            running = asyncio.create_task(client.async_execute_cell(cells[0], 0))
            while not checkpoint.is_file():
                assert not running.done(), cells[0].outputs
                await asyncio.sleep(0.1)
            await client.km.interrupt_kernel()
            await running
            for index in (1, 2):
                await client.async_execute_cell(cells[index], index)

    asyncio.run(interrupt_once_an_epoch_is_saved())
    stderr = "".join(o.text for o in cells[0].outputs if o.get("name") == "stderr")
    assert "interrupted in epoch" in stderr
    assert "resume from Python: linlab.run('experiment=two_x'" in stderr
    assert "ckpt_path='last')" in stderr
    assert result(cells[1].outputs) == "interrupted"
    results = json.loads((tmp_path / "long" / "results.json").read_text())
    assert results["status"] == "interrupted" and 0 < results["epochs"] < 1000000
    assert (tmp_path / "long" / "checkpoints" / "interrupted.ckpt").is_file()
    (error,) = [o for o in cells[2].outputs if o.output_type == "error"]
    assert error.ename == "ConfigError" and "optimizer.lr" in error.evalue
