"""A zoo of small piecewise-linear architectures (CNNs, pooling, residual blocks, maxout, mixed
activations) at non-default parameters, and the slice each is checked on."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import splinecam as sc


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2, stride=2, padding=1),
        )
        self.head = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.block1 = Block(2, 2, 1)
        self.block2 = Block(2, 3, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(self.pool(x).flatten(1))


class CNN1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, dilation=2, padding=2)
        self.conv2 = nn.Conv1d(2, 2, 2, stride=2, groups=2)
        self.fc = nn.Linear(2 * 2, 1)

    def forward(self, x):
        x = F.max_pool1d(F.leaky_relu(self.conv(x), 0.1), 3, stride=2, padding=1)
        x = torch.relu(self.conv2(x))
        return self.fc(x.reshape(x.size(0), -1))


class Maxout(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(2, 4 * 3)
        self.l2 = nn.Linear(4, 2 * 2)
        self.out = nn.Linear(2, 2)

    def forward(self, x):
        h = self.l1(x).view(-1, 4, 3).max(dim=-1).values
        h = torch.amax(self.l2(h).view(h.shape[0], 2, 2), dim=2)
        return self.out(torch.max(h, 0.5 * h.flip(1)))


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3, self.l4 = nn.Linear(2, 4), nn.Linear(4, 4), nn.Linear(8, 3), nn.Linear(3, 2)
        self.prelu = nn.PReLU(4, init=0.2)
        self.act = nn.Sequential(nn.ReLU6(), nn.Dropout(0.3))
        self.hard = nn.Hardtanh(-0.5, 0.8)

    def forward(self, x):
        h = self.prelu(self.l1(x) * 2.0)
        g = torch.abs(self.l2(h)) - 0.3
        h = self.act(torch.cat([h, g], dim=1))
        h = self.hard(self.l3(h)).clamp(min=-0.2)
        return self.l4(h) + x.sum(1, keepdim=True)


def _with_stats(model: nn.Module) -> nn.Module:
    """Random running statistics and per-channel PReLU slopes, as after training; eval mode."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            if isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5)
    return model.eval()


CASES = {  # name -> (model class, input shape, slice scale, grid points per side or 0 when
    # the smallest regions are too thin for a grid to see them all)
    "vgg": (VGG, (1, 6, 6), 0.3, 0),
    "resnet": (ResNet, (1, 6, 6), 1.0, 0),
    "cnn1d": (CNN1d, (1, 8), 1.0, 700),
    "maxout": (Maxout, (2,), 2.0, 700),
    "mixed": (Mixed, (2,), 2.0, 0),
}


def _setup(name):
    cls, shape, scale, grid = CASES[name]
    torch.manual_seed(0)
    model = _with_stats(cls())
    if shape == (2,):
        sl = sc.Slice.box((-scale, -scale), (scale, scale))
    else:
        sl = sc.Slice.from_points(*(scale * torch.randn(3, *shape)))
    return model, sl, grid
