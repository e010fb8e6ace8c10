"""Rebuild the bundled digits example models and data split (`fixedpoint.examples`).

Trains two small networks with PyTorch on scikit-learn's handwritten digits (8x8 grey images, ten
classes), converts them layer by layer into `fixedpoint.Network` objects and saves them as package
data. Run from the repository root:

    pip install -e ".[examples]"
    python examples/train_digits.py

Everything is seeded and runs on one CPU thread with deterministic algorithms, so a rerun on the same
software versions rewrites identical files. The networks keep their batch normalizations unfolded:
folding is the quantizer's preparation step, and the examples should exercise it.

Data: pixel values 0..16 are divided by 16 (so inputs lie in [0, 1]) and the images are laid out
NCHW as (N, 1, 8, 8) float32. A stratified split puts 30 % of the images into the calibration set
(which is also the training set: it is the data a user of the quantizer has at hand) and the other
70 % into the validation set, which the training never sees.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import fixedpoint as fp

SEED = 20240
DATA_DIR = Path(__file__).resolve().parents[1] / "fixedpoint" / "examples" / "data"
CALIBRATION_FRACTION = 0.3


# --- data -----------------------------------------------------------------------------------------
def digits_split():
    """The fixed calibration/validation split, NCHW float32 in [0, 1] with int64 labels."""
    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_cal, x_val, y_cal, y_val = train_test_split(
        x, y, train_size=CALIBRATION_FRACTION, stratify=y, random_state=SEED)
    return (np.ascontiguousarray(x_cal), y_cal), (np.ascontiguousarray(x_val), y_val)


def shifted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation: each image moved by up to one pixel in each direction (zero fill)."""
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=generator)
    return torch.stack([padded[i, :, r:r + 8, c:c + 8] for i, (r, c) in enumerate(offsets.tolist())])


# --- the two architectures (torch side) -----------------------------------------------------------
def conv_bn(c_in, c_out, kernel, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups),
                         nn.BatchNorm2d(c_out))


class DigitsCNN(nn.Module):
    """conv-BN-ReLU x2, max pool, conv-BN-ReLU, global average pool, fully connected."""

    def __init__(self):
        super().__init__()
        self.block1 = conv_bn(1, 8, 3)
        self.block2 = conv_bn(8, 16, 3)
        self.pool = nn.MaxPool2d(2)
        self.block3 = conv_bn(16, 32, 3)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.block1(x))
        x = self.pool(torch.relu(self.block2(x)))
        x = torch.relu(self.block3(x))
        return self.fc(x.mean(dim=(2, 3)))


class DigitsMobileNet(nn.Module):
    """A stem convolution, two depthwise-separable blocks (the first with a residual addition),
    global average pool, fully connected; ReLU6 after every convolution."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.dw1 = conv_bn(16, 16, 3, groups=16)
        self.pw1 = conv_bn(16, 16, 1)
        self.dw2 = conv_bn(16, 16, 3, stride=2, groups=16)
        self.pw2 = conv_bn(16, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        relu6 = nn.functional.relu6
        x = relu6(self.stem(x))
        x = x + relu6(self.pw1(relu6(self.dw1(x))))
        x = relu6(self.pw2(relu6(self.dw2(x))))
        return self.fc(x.mean(dim=(2, 3)))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=epochs * (
        (len(x) + 31) // 32))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(shifted(x_t[batch], generator)), y_t[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


# --- conversion to fixedpoint layers --------------------------------------------------------------
def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.float32)


def convert_conv_bn(block: nn.Sequential, name: str) -> list:
    """A torch conv + batch norm pair as our two layers `<name>` and `<name>_bn` (not folded)."""
    conv, bn = block
    return [fp.Convolution2DLayer(name, _numpy(conv.weight), _numpy(conv.bias), stride=conv.stride,
                                  padding=conv.padding, groups=conv.groups),
            fp.BatchNormalizationLayer(f"{name}_bn", _numpy(bn.weight), _numpy(bn.bias),
                                       _numpy(bn.running_mean), _numpy(bn.running_var),
                                       epsilon=bn.eps)]


def chain(layers: list) -> list[tuple[str, str]]:
    return [(a.name, b.name) for a, b in zip(layers, layers[1:])]


def convert_cnn(model: DigitsCNN) -> fp.Network:
    layers = [fp.ImageInputLayer("input", (1, 8, 8)),
              *convert_conv_bn(model.block1, "conv1"), fp.ReLULayer("relu1"),
              *convert_conv_bn(model.block2, "conv2"), fp.ReLULayer("relu2"),
              fp.MaxPooling2DLayer("maxpool", 2, stride=2),
              *convert_conv_bn(model.block3, "conv3"), fp.ReLULayer("relu3"),
              fp.GlobalAveragePooling2DLayer("gap"),
              fp.FullyConnectedLayer("fc", _numpy(model.fc.weight), _numpy(model.fc.bias)),
              fp.SoftmaxLayer("softmax")]
    return fp.Network(layers, chain(layers))


def convert_mobilenet(model: DigitsMobileNet) -> fp.Network:
    stem = [fp.ImageInputLayer("input", (1, 8, 8)), *convert_conv_bn(model.stem, "stem"),
            fp.ClippedReLULayer("stem_relu6", 6.0)]
    block1 = [*convert_conv_bn(model.dw1, "dw1"), fp.ClippedReLULayer("dw1_relu6", 6.0),
              *convert_conv_bn(model.pw1, "pw1"), fp.ClippedReLULayer("pw1_relu6", 6.0)]
    add = fp.AdditionLayer("add", num_inputs=2)
    tail = [*convert_conv_bn(model.dw2, "dw2"), fp.ClippedReLULayer("dw2_relu6", 6.0),
            *convert_conv_bn(model.pw2, "pw2"), fp.ClippedReLULayer("pw2_relu6", 6.0),
            fp.GlobalAveragePooling2DLayer("gap"),
            fp.FullyConnectedLayer("fc", _numpy(model.fc.weight), _numpy(model.fc.bias)),
            fp.SoftmaxLayer("softmax")]
    connections = [*chain(stem), ("stem_relu6", "dw1"), *chain(block1),
                   ("stem_relu6", "add/in1"), ("pw1_relu6", "add/in2"), ("add", "dw2"),
                   *chain(tail)]
    return fp.Network(stem + block1 + [add] + tail, connections)


def check_same_function(model: nn.Module, net: fp.Network, x: np.ndarray) -> float:
    """Largest difference between torch and our float predict, relative to the largest output,
    over the logits and the softmax probabilities; must be below 1e-5."""
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    probabilities = torch.softmax(torch.from_numpy(logits), 1).numpy()
    ours_logits, ours = net.predict(x, outputs=["fc", "softmax"])
    worst = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                for a, b in ((ours_logits, logits), (ours, probabilities)))
    if not worst <= 1e-5:
        raise RuntimeError(f"converted network differs from torch by {worst:.3g} (relative)")
    return worst


def accuracy(net: fp.Network, x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    correct = int(np.sum(np.argmax(net.predict(x), axis=1) == y))
    return correct, 100.0 * correct / len(y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    (x_cal, y_cal), (x_val, y_val) = digits_split()
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "digits.npz", x_cal=x_cal, y_cal=y_cal, x_val=x_val, y_val=y_val)
    print(f"data: {len(y_cal)} calibration, {len(y_val)} validation images -> "
          f"{args.out / 'digits.npz'}")

    for name, model, convert, seed in (("digits_cnn", DigitsCNN, convert_cnn, SEED),
                                       ("digits_mobilenet", DigitsMobileNet, convert_mobilenet,
                                        SEED + 1)):
        torch.manual_seed(seed)
        trained = train(model(), x_cal, y_cal, args.epochs, seed)
        net = convert(trained)
        difference = check_same_function(trained, net, np.concatenate([x_cal, x_val]))
        path = args.out / f"{name}.npz"
        fp.save_network(net, path)
        correct, percent = accuracy(fp.load_network(path), x_val, y_val)
        print(f"{name}: float validation accuracy {percent:.2f} % ({correct}/{len(y_val)}), "
              f"torch vs fixedpoint {difference:.2g} relative, {path.stat().st_size} bytes "
              f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
