#!/usr/bin/env python3
"""Exports the models strand is tested and measured on, with PyTorch.

    VENV=$(scripts/venv.sh --torch)
    $VENV/bin/python scripts/make_models.py OUTDIR       the seven models that are not tiny
    $VENV/bin/python scripts/make_models.py --tiny       the two tiny models into models/
    $VENV/bin/python scripts/make_models.py --tiny DIR   ... into DIR
    ... --only resnet18,mlp                              a subset (names below)

Every model is randomly initialised from a fixed seed, put in eval mode and
exported by the TorchScript exporter (dynamo=False) at opset 17, with one
float32 input "input" and one output "output" whose first axis is the dynamic
"batch". Exports are deterministic for a given torch version.

  mlp                  784-512-256-10, ReLU                       (~2 MB)
  mlp512               784-512-512-10, ReLU: issue 6's benchmark MLP (~2.7 MB)
  resnet18             ResNet-18, 3x224x224 -> 1000               (~45 MB)
  mobilenetv2          MobileNetV2 (width 1.0), 3x224x224 -> 1000 (~14 MB)
  transformer_encoder  4 post-norm encoder layers, d_model 256, 4 heads,
                       feed-forward 1024, input [batch, 128, 256] (~13 MB)
  lstm                 2-layer LSTM, hidden 256, input [batch, 64, 256]
                       (64 steps of 256 features); output: the top
                       layer's hidden state at every step [batch, 64, 256]
                       (~4 MB)
  resnet18_bn          ResNet-18 exported without constant folding: its 20
                       BatchNormalization nodes stay in the graph (as in
                       models exported that way or by other tools) (~47 MB)
  mlp_tiny             16-32-32-4, ReLU                           (--tiny)
  cnn_tiny             two Conv+ReLU+MaxPool, then Gemm, 1x28x28 -> 10 (--tiny)

ResNet-18 and MobileNetV2 are written out in plain torch (no torchvision),
following torchvision's definitions, so that only torch is needed.
BatchNorm is folded into the preceding Conv by the exporter (eval mode),
except in resnet18_bn, which keeps it for strand to fold.

Next to each tiny model the script writes NAME.input.npy (batch 2) and
NAME.expected.npy (PyTorch's output for it), references for strand's tests.
Every export is checked against onnxruntime at a batch size other than the
one traced, which proves the batch axis is really dynamic.
"""
import argparse
import os
import sys
import warnings

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    sys.exit("make_models.py needs torch: VENV=$(scripts/venv.sh --torch); "
             "$VENV/bin/python scripts/make_models.py ...")

SEED = 20240601
OPSET = 17
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- models -----------------------------------------------------------------

def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet's two-3x3 block (torchvision.models.resnet.BasicBlock)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        inplanes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(inplanes, planes, stride),
                                        BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_relu6(inp, out, kernel, stride, groups=1):
    return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block (torchvision.models.mobilenetv2.InvertedResidual)."""

    def __init__(self, inp, out, stride, expand):
        super().__init__()
        hidden = inp * expand
        self.use_residual = stride == 1 and inp == out
        layers = []
        if expand != 1:
            layers.append(conv_bn_relu6(inp, hidden, 1, 1))
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        layers = [conv_bn_relu6(3, 32, 3, 2)]
        inp = 32
        for expand, out, repeats, stride in settings:
            for i in range(repeats):
                layers.append(InvertedResidual(inp, out, stride if i == 0 else 1, expand))
                inp = out
        layers.append(conv_bn_relu6(inp, 1280, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class TransformerEncoder(nn.Module):
    def __init__(self, d_model=256, heads=4, layers=4, feed_forward=1024):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model, heads, feed_forward, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        # TransformerEncoder deep-copies one layer: re-draw every weight so
        # the layers differ (the exporter would otherwise share them).
        for parameter_name, p in self.encoder.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif "norm" in parameter_name and parameter_name.endswith("weight"):
                nn.init.uniform_(p, 0.75, 1.25)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, x):
        return self.encoder(x)


class Lstm(nn.Module):
    """A stacked LSTM over a sequence, batch first; the initial states are
    zeros (the exported LSTM nodes get no initial_h / initial_c)."""

    def __init__(self, input_size=256, hidden=256, layers=2):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, layers, batch_first=True)

    def forward(self, x):
        out, _ = self.lstm(x)
        return out


class CnnTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def randomize_batchnorm(model, generator):
    """Fresh BatchNorm layers are identities; give them statistics so that
    folding them into Conv changes the weights, as a trained model's would."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


# name: (constructor, input shape without batch, tiny)
MODELS = {
    "mlp": (lambda: mlp([784, 512, 256, 10]), (784,), False),
    "resnet18": (ResNet18, (3, 224, 224), False),
    "mobilenetv2": (MobileNetV2, (3, 224, 224), False),
    "transformer_encoder": (TransformerEncoder, (128, 256), False),
    "mlp512": (lambda: mlp([784, 512, 512, 10]), (784,), False),
    "lstm": (Lstm, (64, 256), False),
    "resnet18_bn": (ResNet18, (3, 224, 224), False),
    "mlp_tiny": (lambda: mlp([16, 32, 32, 4]), (16,), True),
    "cnn_tiny": (CnnTiny, (1, 28, 28), True),
}


# Exported without constant folding: BatchNormalization stays a node.
KEEP_BATCHNORM = {"resnet18_bn"}

# ---- export -----------------------------------------------------------------

def build(name):
    constructor, shape, _ = MODELS[name]
    torch.manual_seed(SEED)
    model = constructor()
    generator = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        randomize_batchnorm(model, generator)
    model.eval()
    return model, shape


def sample_input(shape, batch, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch,) + shape, generator=generator)


def export(name, directory):
    model, shape = build(name)
    path = os.path.join(directory, name + ".onnx")
    example = sample_input(shape, 2, SEED + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=OPSET,
                          export_params=True, do_constant_folding=name not in KEEP_BATCHNORM,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    check(name, model, shape, path)
    if MODELS[name][2]:
        with torch.no_grad():
            expected = model(example).numpy()
        np.save(os.path.join(directory, name + ".input.npy"), example.numpy())
        np.save(os.path.join(directory, name + ".expected.npy"), expected)
    size = os.path.getsize(path)
    print(f"{path}: {size / 1e6:.2f} MB", flush=True)
    return path


def check(name, model, shape, path):
    """The file is valid ONNX at opset 17 with a dynamic batch, and
    onnxruntime agrees with PyTorch at batch 3 (the export traced batch 2)."""
    import onnx
    import onnxruntime

    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == OPSET, opsets
    for value in list(proto.graph.input) + list(proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        assert dim.dim_param == "batch", (name, value.name, dim)
    x = sample_input(shape, 3, SEED + 3)
    with torch.no_grad():
        want = model(x).numpy()
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    error = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
    if got.shape != want.shape or not error < 1e-4:
        raise SystemExit(f"{name}: onnxruntime differs from torch: shape {got.shape} vs "
                         f"{want.shape}, relative error {error:.3g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", help="output directory")
    parser.add_argument("--tiny", action="store_true",
                        help="export the tiny models (default directory: <repo>/models)")
    parser.add_argument("--only", help="comma-separated model names")
    args = parser.parse_args()
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            parser.error(f"unknown model {unknown}; known: {', '.join(MODELS)}")
    else:
        names = [n for n, (_, _, tiny) in MODELS.items() if tiny == args.tiny]
    directory = args.directory or (os.path.join(REPO, "models") if args.tiny else None)
    if not directory:
        parser.error("give an output directory (or --tiny)")
    os.makedirs(directory, exist_ok=True)
    # The fused encoder-layer kernel has no ONNX form; export the plain ops.
    torch.backends.mha.set_fastpath_enabled(False)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in names:
        export(name, directory)


if __name__ == "__main__":
    main()
