"""Small, randomly initialised torchvision classifiers for the interpreter's real-model fixtures.

Each family is kept at its real topology but narrowed (width multipliers or torchvision constructor
options, 10 classes) so that one export stays well under 5 MB. Used by make_fixtures.py
(`--only torchvision`); no weights are downloaded.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import torch
import torch.nn as nn


def import_torchvision():
    """Imports torchvision's pure-Python models even when its compiled ops cannot load.

    The pinned torchvision wheel may be a CUDA build next to a CPU torch: its `_C` extension then
    fails to load and `torchvision/__init__` dies registering fake kernels for `torchvision::nms`.
    The classifiers need none of those ops, so the two registration modules are stubbed.
    """
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    try:
        import torchvision
        return torchvision
    except RuntimeError:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
        import torchvision
        return torchvision


@dataclass
class Spec:
    name: str
    seed: int
    input_size: int = 64
    num_classes: int = 10


SPECS = [
    Spec("resnet18_w8", 201),
    Spec("mobilenet_v3_small_x0_5", 202),
    Spec("efficientnet_b0_x0_25", 203),
    Spec("squeezenet1_1_x0_25", 204),
    Spec("shufflenet_v2_x0_5_c256", 205),
    Spec("densenet121_k4", 206),
]


def narrow_resnet18(tv, base: int, num_classes: int) -> nn.Module:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]) with channel widths base, 2b, 4b, 8b instead of 64..512,
    built from torchvision's own ResNet and BasicBlock (ResNet has no width option for BasicBlock)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    model.inplanes = base
    model.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(base)
    model.layer1 = model._make_layer(BasicBlock, base, 2)
    model.layer2 = model._make_layer(BasicBlock, 2 * base, 2, stride=2)
    model.layer3 = model._make_layer(BasicBlock, 4 * base, 2, stride=2)
    model.layer4 = model._make_layer(BasicBlock, 8 * base, 2, stride=2)
    model.fc = nn.Linear(8 * base, num_classes)
    for m in model.modules():  # torchvision's ResNet init
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return model


def narrow_squeezenet1_1(tv, divisor: int, num_classes: int) -> nn.Module:
    """SqueezeNet 1.1 (same layers, ceil-mode pools, dropout, final 1x1 conv) with every channel count
    divided by `divisor`, built from torchvision's SqueezeNet and Fire modules."""
    from torchvision.models.squeezenet import Fire

    model = tv.models.squeezenet1_1(weights=None, num_classes=num_classes)
    for i, m in enumerate(model.features):
        if isinstance(m, nn.Conv2d):
            model.features[i] = nn.Conv2d(3, m.out_channels // divisor, kernel_size=m.kernel_size, stride=m.stride)
        elif isinstance(m, Fire):
            model.features[i] = Fire(m.squeeze.in_channels // divisor, m.squeeze.out_channels // divisor,
                                     m.expand1x1.out_channels // divisor, m.expand3x3.out_channels // divisor)
    final = model.classifier[1]
    model.classifier[1] = nn.Conv2d(final.in_channels // divisor, num_classes, kernel_size=1)
    for m in model.modules():  # torchvision's SqueezeNet init (its final conv's N(0, 0.01) is left out)
        if isinstance(m, nn.Conv2d) and m is not model.classifier[1]:
            nn.init.kaiming_uniform_(m.weight)
            nn.init.constant_(m.bias, 0)
    return model


@torch.no_grad()
def randomize_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BN statistics and affine parameters, so that folding them changes the graph's numbers."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.mul_(1 + 0.2 * torch.randn(c, generator=gen))
            m.bias.add_(0.1 * torch.randn(c, generator=gen))
            m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
            m.running_var.copy_(torch.exp(0.2 * torch.randn(c, generator=gen)))


def build(spec: Spec) -> tuple[nn.Module, torch.Tensor, str]:
    tv = import_torchvision()
    from torchvision.models import efficientnet

    torch.manual_seed(spec.seed)
    n = spec.num_classes
    if spec.name == "resnet18_w8":
        model = narrow_resnet18(tv, 8, n)
        what = "ResNet-18 topology at base width 8 (8/16/32/64 channels instead of 64..512)"
    elif spec.name == "mobilenet_v3_small_x0_5":
        model = tv.models.mobilenet_v3_small(weights=None, num_classes=n, width_mult=0.5, reduced_tail=True)
        what = "torchvision mobilenet_v3_small(width_mult=0.5, reduced_tail=True)"
    elif spec.name == "efficientnet_b0_x0_25":
        settings, last_channel = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=1.0)
        model = efficientnet.EfficientNet(settings, dropout=0.2, last_channel=last_channel, num_classes=n)
        what = "torchvision EfficientNet with efficientnet_b0's block settings at width_mult 0.25 (depth 1.0)"
    elif spec.name == "squeezenet1_1_x0_25":
        model = narrow_squeezenet1_1(tv, 4, n)
        what = "SqueezeNet 1.1 topology with every channel count divided by 4 (torchvision Fire modules)"
    elif spec.name == "shufflenet_v2_x0_5_c256":
        from torchvision.models.shufflenetv2 import ShuffleNetV2

        model = ShuffleNetV2([4, 8, 4], [24, 48, 96, 192, 256], num_classes=n)
        what = "torchvision ShuffleNetV2 as shufflenet_v2_x0_5 but with a 256-channel (not 1024) last conv"
    elif spec.name == "densenet121_k4":
        model = tv.models.DenseNet(growth_rate=4, block_config=(6, 12, 24, 16), num_init_features=8,
                                   num_classes=n)
        what = "torchvision DenseNet with DenseNet-121's blocks (6/12/24/16), growth rate 4 (not 32), 8 initial features"
    else:
        raise ValueError(spec.name)
    gen = torch.Generator().manual_seed(spec.seed)
    randomize_bn(model, gen)
    with torch.no_grad():  # classifier heads at nn.Linear's default init: logits of order 1, not 1e-3
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
    model.eval()
    x = torch.rand(2, 3, spec.input_size, spec.input_size, generator=gen)
    params = sum(p.numel() for p in model.parameters())
    return model, x, (f"{what}, {n} classes, random init seed {spec.seed}, randomised BN stats; "
                      f"Linear heads at nn.Linear's default init; {params} parameters; input 2x3x{spec.input_size}x{spec.input_size}")
