"""Reference vision architectures written as torchvision defines them (torchvision itself is
not a dependency): ResNet-18 and VGG-11 with batch norm, for 3x32x32 inputs and 10 classes, and
the VGG-11 and VGG-16 of the SplineCam paper's Tiny ImageNet study (3x64x64, 200 classes)."""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (1x1 conv + BN when the
    shape changes), as ``torchvision.models.resnet.BasicBlock``."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """``torchvision.models.resnet18(num_classes=...)``: 7x7 stride-2 stem, BN, ReLU, 3x3 stride-2
    max-pool, four stages of two BasicBlocks (64, 128, 256, 512), global average pool, fc."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, inplanes = [], 64
        for i, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        _init(self)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class VGG(nn.Module):
    """``torchvision.models.vgg*_bn(num_classes=...)``: a configuration of 3x3 convolutions
    (numbers: output channels) and 2x2 pools ("M"), each convolution followed by batch norm and
    ReLU; adaptive average pool to 7x7; classifier 512*7*7 -> 4096 -> 4096 -> classes with ReLU
    and dropout.  ``pool``: max-pool (torchvision) or average pool; ``conv_bias``: whether the
    convolutions have biases (torchvision: yes); ``first_stride``: the first convolution's."""

    CFGS = {11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
            16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}

    def __init__(self, depth: int = 11, num_classes: int = 10, pool: str = "max", conv_bias: bool = True,
                 first_stride: int = 1):
        super().__init__()
        layers, c = [], 3
        for v in self.CFGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            else:
                stride = first_stride if not layers else 1
                layers += [nn.Conv2d(c, v, 3, stride, padding=1, bias=conv_bias), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, num_classes),
        )
        _init(self)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class VGG11BN(VGG):
    """``torchvision.models.vgg11_bn(num_classes=...)`` (cfg A with batch norm)."""

    def __init__(self, num_classes: int = 10):
        super().__init__(11, num_classes)


def tiny_imagenet_vgg(depth: int) -> VGG:
    """The Tiny ImageNet networks of the SplineCam repository's training script: VGG-11 or VGG-16
    with batch norm, max-pools replaced by average pools, convolutions without bias, the first
    one of stride 2; 3x64x64 inputs (the features end at 1x1x512), 200 classes."""
    return VGG(depth, 200, pool="avg", conv_bias=False, first_stride=2)


def _init(model: nn.Module) -> None:
    """torchvision's initialisation: Kaiming-normal convolutions (fan out), unit batch norms,
    N(0, 0.01) linear layers in VGG (ResNet's fc keeps PyTorch's default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and isinstance(model, VGG):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
