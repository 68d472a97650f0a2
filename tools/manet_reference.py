"""PyTorch reference of MA-Net (Zhao, Liu, Wang, IEEE TIP 2021), written from ../shared/ARCHITECTURE.md.

Parameter names follow the authors' `state_dict` exactly, so weights move between this model, the
Swift toolkit and the authors' checkpoints by name. `width` scales every channel count (64 = the
paper, 50.5 M parameters); the input may be any multiple of 32 from 64 up, the local branch cutting
the layer2 map into its four halves (identical to the authors' fixed 0:14 / 14:28 slices at 224).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

BETA = 0.6  # weight of the local (attention) branch in the loss and in the fused prediction
CLASS_NAMES = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def downsample(in_planes: int, out_planes: int, stride: int) -> nn.Sequential | None:
    """The projection shortcut (names `downsample.0` conv, `downsample.1` BN), or None for identity."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample(inplanes, planes, stride)

    def residual(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.residual(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class ChannelGate(nn.Module):
    """sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))) scales each channel; the MLP is shared."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, C, H, W]; global pools over H x W
        att = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(att)[:, :, None, None]


class BasicConv(nn.Module):
    """Conv + BN without ReLU: the spatial gate's `spatial.conv` / `spatial.bn`."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = BasicConv(2, 1, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channel max first, then channel mean (the authors' ChannelPool order). torch.max(dim) as
        # the authors wrote it: its gradient goes to one index per tie, unlike torch.amax.
        compressed = torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)
        return x * torch.sigmoid(self.spatial(compressed))


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class AttentionBlock(BasicBlock):
    """A BasicBlock whose second BN output passes through CBAM before the residual add."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__(inplanes, planes, stride)
        self.cbam = CBAM(planes, 16)

    def residual(self, out: torch.Tensor) -> torch.Tensor:
        return self.cbam(out)


class MulScaleBlock(nn.Module):
    """3x3 conv, then two cascades of 3x3 conv+BN over 4 channel groups in opposite orders, summed."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        group = planes // 4
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        for cascade in (1, 2):
            for k in (1, 2, 3, 4):
                setattr(self, f"conv{cascade}_2_{k}", conv3x3(group, group))
                setattr(self, f"bn{cascade}_2_{k}", nn.BatchNorm2d(group))
        self.relu = nn.ReLU()
        self.downsample = downsample(inplanes, planes, stride)
        self.group = group

    def _step(self, cascade: int, k: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"bn{cascade}_2_{k}")(getattr(self, f"conv{cascade}_2_{k}")(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        sp = torch.split(out, self.group, 1)

        o11 = self._step(1, 1, sp[0])
        o12 = self._step(1, 2, self.relu(o11) + sp[1])
        o13 = self._step(1, 3, self.relu(o12) + sp[2])
        o14 = self._step(1, 4, self.relu(o13) + sp[3])
        out1 = torch.cat([o11, o12, o13, o14], dim=1)

        o24 = self._step(2, 4, sp[3])
        o23 = self._step(2, 3, self.relu(o24) + sp[2])
        o22 = self._step(2, 2, self.relu(o23) + sp[1])
        o21 = self._step(2, 1, self.relu(o22) + sp[0])
        out2 = torch.cat([o21, o22, o23, o24], dim=1)

        return self.relu(out1 + out2 + identity)


def make_layer(block: type, inplanes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(block(inplanes, planes, stride), block(planes, planes, 1))


class MANet(nn.Module):
    def __init__(self, num_classes: int = 7, width: int = 64):
        super().__init__()
        if width % 4 != 0 or width < 4:
            raise ValueError(f"width must be a positive multiple of 4 (CBAM reduction 16 of 4*width), got {width}")
        w = width
        self.width = width
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = make_layer(BasicBlock, w, w, 1)
        self.layer2 = make_layer(BasicBlock, w, 2 * w, 2)
        for k in (1, 2, 3, 4):
            setattr(self, f"layer3_1_p{k}", make_layer(AttentionBlock, 2 * w, 4 * w, 2))
            setattr(self, f"layer4_1_p{k}", make_layer(AttentionBlock, 4 * w, 8 * w, 1))
        self.layer3_2 = make_layer(MulScaleBlock, 2 * w, 4 * w, 2)
        self.layer4_2 = make_layer(MulScaleBlock, 4 * w, 8 * w, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc_1 = nn.Linear(8 * w, num_classes)
        self.fc_2 = nn.Linear(8 * w, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Linear layers keep the default init they got at construction.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [N, 3, H, W], H and W multiples of 32, values in [0, 1]
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))  # [N, 2w, H/8, W/8]

        h, w = x.size(2) // 2, x.size(3) // 2
        patches = (x[:, :, 0:h, 0:w], x[:, :, 0:h, w:], x[:, :, h:, 0:w], x[:, :, h:, w:])
        local = [
            getattr(self, f"layer4_1_p{k}")(getattr(self, f"layer3_1_p{k}")(p))
            for k, p in zip((1, 2, 3, 4), patches)
        ]
        top = torch.cat([local[0], local[1]], dim=3)
        bottom = torch.cat([local[2], local[3]], dim=3)
        local_map = torch.cat([top, bottom], dim=2)
        logits_local = self.fc_1(torch.flatten(self.avgpool(local_map), 1))

        global_map = self.layer4_2(self.layer3_2(x))
        logits_global = self.fc_2(torch.flatten(self.avgpool(global_map), 1))
        return logits_local, logits_global


# Helpers ------------------------------------------------------------------------------------------


def build_manet(num_classes: int = 7, width: int = 64, seed: int = 0) -> MANet:
    """A freshly initialised MA-Net; the same seed gives the same bits."""
    torch.manual_seed(seed)
    return MANet(num_classes=num_classes, width=width)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def manet_loss(logits_local: torch.Tensor, logits_global: torch.Tensor, target: torch.Tensor,
               beta: float = BETA) -> torch.Tensor:
    return beta * F.cross_entropy(logits_local, target) + (1 - beta) * F.cross_entropy(logits_global, target)


def fused_logits(logits_local: torch.Tensor, logits_global: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    return beta * logits_local + (1 - beta) * logits_global


def strip_module_prefix(state_dict: dict) -> dict:
    """Removes DataParallel's `module.` prefix, as found in the authors' checkpoints."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}


@torch.no_grad()
def make_bn_nontrivial(model: nn.Module, seed: int, input_size: int = 224, passes: int = 3,
                       batch: int = 4) -> None:
    """Gives every BatchNorm running statistics and affine parameters that are not identity.

    A few training-mode forward passes on random inputs move the running stats; then weights,
    biases and the stats themselves are perturbed so that BN folding has something to fold.
    """
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.train()
    for _ in range(passes):
        model(torch.rand(batch, 3, input_size, input_size, generator=gen))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.mul_(1 + 0.2 * torch.randn(c, generator=gen))
            m.bias.add_(0.1 * torch.randn(c, generator=gen))
            m.running_mean.add_(0.05 * torch.randn(c, generator=gen))
            m.running_var.mul_(torch.exp(0.2 * torch.randn(c, generator=gen)))
    model.train(was_training)


if __name__ == "__main__":
    for width in (8, 64):
        model = MANet(7, width)
        print(f"width {width}: {parameter_count(model):,} parameters, {len(model.state_dict())} state_dict entries")
        model.eval()
        with torch.no_grad():
            a, b = model(torch.rand(1, 3, 224, 224))
        print("  outputs", tuple(a.shape), tuple(b.shape))
