"""Small models in the styles students bring (MobileNetV3, EfficientNet, Inception, U-Net,
functional code), built here with seeded random weights and batch-norm statistics, for the
converter tests. Each is a few layers, so conversion and comparison take well under a second."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.6, 1.4)
        bn.bias.uniform_(-0.2, 0.2)
    return bn


class SqueezeExcite(nn.Module):
    """torchvision-style SE: pooled map -> 1x1 conv -> act -> 1x1 conv -> gate -> product."""

    def __init__(self, c, squeeze, act=nn.ReLU, gate=nn.Hardsigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.act = nn.Conv2d(c, squeeze, 1), act()
        self.fc2, self.gate = nn.Conv2d(squeeze, c, 1), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class MobileNetV3Block(nn.Module):
    """Stem with Hardswish, an inverted residual with SE, a head with a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), _bn(16), nn.Hardswish())
        self.expand = nn.Sequential(nn.Conv2d(16, 48, 1, bias=False), _bn(48), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(48, 48, 3, 1, 1, groups=48, bias=False), _bn(48),
                                nn.Hardswish())
        self.se = SqueezeExcite(48, 12)
        self.project = nn.Sequential(nn.Conv2d(48, 16, 1, bias=False), _bn(16))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 32),
                                  nn.Hardswish(), nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        x = self.stem(x)
        return self.head(x + self.project(self.se(self.dw(self.expand(x)))))


class EfficientNetBlock(nn.Module):
    """TF-style same padding (ZeroPad2d, asymmetric at stride 2) before a 5x5 depthwise conv,
    SiLU, SE with SiLU and Sigmoid, and torch.mean for the pooled head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 24, 3, 2, bias=False),
                                  _bn(24), nn.SiLU())
        self.pad = nn.ZeroPad2d((1, 2, 1, 2))
        self.dw = nn.Conv2d(24, 24, 5, 2, groups=24, bias=False)
        self.bn = _bn(24)
        self.se = SqueezeExcite(24, 6, act=nn.SiLU, gate=nn.Sigmoid)
        self.project = nn.Sequential(nn.Conv2d(24, 16, 1, bias=False), _bn(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.silu(self.bn(self.dw(self.pad(self.stem(x)))))
        x = self.project(self.se(x))
        return self.fc(torch.mean(x, dim=(2, 3)))


class InceptionBlock(nn.Module):
    """Four branches (1x1, 3x3, 5x5 as two 3x3, pool + 1x1) concatenated on channels."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())

        def cbr(i, o, k):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), _bn(o),
                                 nn.ReLU())

        self.b1 = cbr(16, 8, 1)
        self.b3 = nn.Sequential(cbr(16, 8, 1), cbr(8, 12, 3))
        self.b5 = nn.Sequential(cbr(16, 4, 1), cbr(4, 6, 3), cbr(6, 6, 3))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1), nn.ZeroPad2d(1), cbr(16, 6, 1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


class UNetBlock(nn.Module):
    """Down by a stride-2 conv, up by nearest and bilinear upsampling, skip concatenations."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.enc3 = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU())
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec1 = nn.Sequential(nn.Conv2d(32, 8, 3, padding=1), nn.ReLU())
        self.dec2 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.LeakyReLU(0.1))
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d1 = self.dec1(torch.cat([self.up1(self.enc3(e2)), e2], 1))
        d2 = self.dec2(torch.cat((F.interpolate(d1, scale_factor=2), e1), dim=1))
        return self.out(d2)


class StdConv(nn.Conv2d):
    """A Conv2d subclass that keeps Conv2d.forward: read as a Conv2d."""


class FunctionalNet(nn.Module):
    """Parameters used through F.conv2d / F.linear, 'same' padding, GELU, Tanh, a hand-written
    hard-swish (x * relu6(x + 3) / 6) and a subclassed conv."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(12, 3, 3, 3) * 0.3)
        self.b1 = nn.Parameter(torch.randn(12) * 0.1)
        self.conv2 = nn.Conv2d(12, 12, 4, padding="same")
        self.conv3 = StdConv(12, 16, 3, stride=2, padding=1)
        self.w_fc = nn.Parameter(torch.randn(10, 16) * 0.3)

    def forward(self, x):
        x = F.conv2d(x, self.w1, self.b1, stride=1, padding=1)
        x = x * F.relu6(x + 3) / 6
        x = F.gelu(self.conv2(x))
        x = torch.tanh(self.conv3(x))
        x = x.mean([2, 3], keepdim=True)
        return F.linear(x.view(x.size(0), -1), self.w_fc)


ZOO = {"mobilenet_v3": MobileNetV3Block, "efficientnet": EfficientNetBlock,
       "inception": InceptionBlock, "unet": UNetBlock, "functional": FunctionalNet}


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ZOO[name]().eval()
