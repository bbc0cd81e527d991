"""MODNet (Ke et al., AAAI 2022), inference-only and `torch.jit.script`-friendly.

Module and parameter names follow the official implementation, so that official
state_dicts load with `strict=True` once the training-only heads and the duplicated
`lr_branch.backbone.*` entries are dropped (see `weights.py`).

The pitfalls of scripting the official code (../shared/notes/model.md) are avoided:
no lambdas (explicit slices of `features`), no `None` defaults, float scale factors,
no variables that change type, no `nn.DataParallel`. Only the matte is computed; the
training heads (`lr_branch.conv_lr`, `hr_branch.conv_hr`) are not part of this model.
"""

import copy
from typing import List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

ENC_CHANNELS = [16, 24, 32, 96, 1280]
HR_CHANNELS = 32


# --------------------------------------------------------------------------- backbone


def conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


def conv_1x1_bn(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expansion: int):
        super().__init__()
        hidden = round(inp * expansion)
        self.use_res_connect = stride == 1 and inp == oup
        layers: List[nn.Module] = []
        if expansion != 1:
            layers += [
                nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2, width 1.0, expansion 6, without classifier (19 feature blocks)."""

    def __init__(self, in_channels: int = 3, expansion: int = 6):
        super().__init__()
        setting = [
            # t, c, n, s
            [1, 16, 1, 1],
            [expansion, 24, 2, 2],
            [expansion, 32, 3, 2],
            [expansion, 64, 4, 2],
            [expansion, 96, 3, 1],
            [expansion, 160, 3, 2],
            [expansion, 320, 1, 1],
        ]
        features: List[nn.Module] = [conv_bn(in_channels, 32, 2)]
        channels = 32
        for t, c, n, s in setting:
            for i in range(n):
                features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        features.append(conv_1x1_bn(channels, 1280))
        self.features = nn.Sequential(*features)


class MobileNetV2Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = MobileNetV2(3)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        # A plain loop instead of the official reduce(lambda ...) (lambdas do not
        # script; neither does calling a slice of a Sequential). TorchScript unrolls
        # it; the features after blocks 1, 3, 6, 13 and 18 are the encoder outputs.
        outs: List[torch.Tensor] = []
        for i, block in enumerate(self.model.features):
            x = block(x)
            if i == 1 or i == 3 or i == 6 or i == 13 or i == 18:
                outs.append(x)
        return outs


# --------------------------------------------------------------------------- blocks


class IBNorm(nn.Module):
    """BatchNorm on the first int(c/2) channels, InstanceNorm on the rest."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.bnorm_channels = int(in_channels / 2)
        self.inorm_channels = in_channels - self.bnorm_channels
        self.bnorm = nn.BatchNorm2d(self.bnorm_channels, affine=True)
        self.inorm = nn.InstanceNorm2d(self.inorm_channels, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn_x = self.bnorm(x[:, : self.bnorm_channels].contiguous())
        in_x = self.inorm(x[:, self.bnorm_channels :].contiguous())
        return torch.cat((bn_x, in_x), 1)


class Conv2dIBNormRelu(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        with_ibn: bool = True,
        with_relu: bool = True,
    ):
        super().__init__()
        layers: List[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=True)
        ]
        if with_ibn:
            layers.append(IBNorm(out_channels))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SEBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, reduction: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, in_channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(in_channels // reduction, out_channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.size(0), x.size(1)
        w = self.pool(x).view(b, c)
        w = self.fc(w).view(b, c, 1, 1)
        return x * w.expand_as(x)


def up2(x: torch.Tensor) -> torch.Tensor:
    # scale_factor must be a float for TorchScript.
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- branches


class LRBranch(nn.Module):
    """Low-resolution (semantic) branch. Unlike the official class it does not own
    the backbone: the encoder features are computed once in MODNet.forward."""

    def __init__(self):
        super().__init__()
        c = ENC_CHANNELS
        self.se_block = SEBlock(c[4], c[4], reduction=4)
        self.conv_lr16x = Conv2dIBNormRelu(c[4], c[3], 5, stride=1, padding=2)
        self.conv_lr8x = Conv2dIBNormRelu(c[3], c[2], 5, stride=1, padding=2)

    def forward(self, enc32x: torch.Tensor) -> torch.Tensor:
        enc32x = self.se_block(enc32x)
        lr16x = self.conv_lr16x(up2(enc32x))
        lr8x = self.conv_lr8x(up2(lr16x))
        return lr8x


class HRBranch(nn.Module):
    def __init__(self, hr: int = HR_CHANNELS):
        super().__init__()
        c = ENC_CHANNELS
        self.tohr_enc2x = Conv2dIBNormRelu(c[0], hr, 1, stride=1, padding=0)
        self.conv_enc2x = Conv2dIBNormRelu(hr + 3, hr, 3, stride=2, padding=1)
        self.tohr_enc4x = Conv2dIBNormRelu(c[1], hr, 1, stride=1, padding=0)
        self.conv_enc4x = Conv2dIBNormRelu(2 * hr, 2 * hr, 3, stride=1, padding=1)
        self.conv_hr4x = nn.Sequential(
            Conv2dIBNormRelu(3 * hr + 3, 2 * hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, stride=1, padding=1),
        )
        self.conv_hr2x = nn.Sequential(
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, stride=1, padding=1),
        )

    def forward(
        self, img: torch.Tensor, enc2x: torch.Tensor, enc4x: torch.Tensor, lr8x: torch.Tensor
    ) -> torch.Tensor:
        img2x = F.interpolate(img, scale_factor=0.5, mode="bilinear", align_corners=False)
        img4x = F.interpolate(img, scale_factor=0.25, mode="bilinear", align_corners=False)
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(torch.cat((img2x, enc2x), dim=1))
        enc4x = self.tohr_enc4x(enc4x)
        hr4x = self.conv_enc4x(torch.cat((hr4x, enc4x), dim=1))
        lr4x = up2(lr8x)
        hr4x = self.conv_hr4x(torch.cat((hr4x, lr4x, img4x), dim=1))
        hr2x = up2(hr4x)
        hr2x = self.conv_hr2x(torch.cat((hr2x, enc2x), dim=1))
        return hr2x


class FusionBranch(nn.Module):
    def __init__(self, hr: int = HR_CHANNELS):
        super().__init__()
        c = ENC_CHANNELS
        self.conv_lr4x = Conv2dIBNormRelu(c[2], hr, 5, stride=1, padding=2)
        self.conv_f2x = Conv2dIBNormRelu(2 * hr, hr, 3, stride=1, padding=1)
        self.conv_f = nn.Sequential(
            Conv2dIBNormRelu(hr + 3, hr // 2, 3, stride=1, padding=1),
            Conv2dIBNormRelu(hr // 2, 1, 1, stride=1, padding=0, with_ibn=False, with_relu=False),
        )

    def forward(self, img: torch.Tensor, lr8x: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        lr4x = self.conv_lr4x(up2(lr8x))
        lr2x = up2(lr4x)
        f2x = self.conv_f2x(torch.cat((lr2x, hr2x), dim=1))
        f = self.conv_f(torch.cat((up2(f2x), img), dim=1))
        return torch.sigmoid(f)


class MODNet(nn.Module):
    """Input: float32 [N,3,H,W] in [-1,1], H and W multiples of 32.
    Output: the matte, float32 [N,1,H,W] in [0,1]."""

    def __init__(self):
        super().__init__()
        self.backbone = MobileNetV2Backbone()
        self.lr_branch = LRBranch()
        self.hr_branch = HRBranch()
        self.f_branch = FusionBranch()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        enc = self.backbone(img)
        lr8x = self.lr_branch(enc[4])
        hr2x = self.hr_branch(img, enc[0], enc[1], lr8x)
        return self.f_branch(img, lr8x, hr2x)


# --------------------------------------------------------------------------- fp16


class MODNetFp16(nn.Module):
    """MODNet in half precision for CUDA, with the backbone's first `FP32_BLOCKS`
    blocks kept in float32. Same contract as MODNet: float32 in, float32 out.

    Casting everything to half moves the matte of the real photo by up to 54/255
    (rounding just the weights to half, computing in float32, already 31/255): the
    early high-resolution blocks, with conv and BatchNorm folded (weights up to 119),
    are the sensitive part. With blocks 0-10 in float32 the photo stays within
    2/255 of float32 (measured on a CPU; gpu_check.sh measures the GPU)."""

    FP32_BLOCKS = 11

    def __init__(self, model: MODNet):
        super().__init__()
        half = copy.deepcopy(model).half()
        features = half.backbone.model.features
        for i in range(self.FP32_BLOCKS):
            features[i] = copy.deepcopy(model.backbone.model.features[i]).float()
        self.features = features
        self.lr_branch = half.lr_branch
        self.hr_branch = half.hr_branch
        self.f_branch = half.f_branch

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []
        x = img
        for i, block in enumerate(self.features):
            if i == 11:  # FP32_BLOCKS (TorchScript wants a literal here)
                x = x.half()
            x = block(x)
            if i == 1 or i == 3 or i == 6 or i == 13 or i == 18:
                outs.append(x.half())
        img_half = img.half()
        lr8x = self.lr_branch(outs[4])
        hr2x = self.hr_branch(img_half, outs[0], outs[1], lr8x)
        return self.f_branch(img_half, lr8x, hr2x).float()


# --------------------------------------------------------------------------- CPU


class HalfInstanceNorm(nn.Module):
    """IBNorm once its BatchNorm half is folded into the preceding convolution:
    identity on the first `split` channels, instance norm (no affine, eps 1e-5) on
    the rest. Works in any memory format: no slice is made contiguous and nothing is
    concatenated but two [1,C,1,1] vectors, so a channels-last tensor stays
    channels-last (nn.InstanceNorm2d makes its input contiguous in NCHW, and the
    convolutions around it then convert back: 47 layout copies per forward)."""

    def __init__(self, channels: int, split: int, eps: float = 1e-5):
        super().__init__()
        self.split = split
        self.eps = eps
        self.register_buffer("ones", torch.ones(1, split, 1, 1))
        self.register_buffer("zeros", torch.zeros(1, split, 1, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        t = y[:, self.split :]
        # Centred two-pass variance on the slice as it lies: var_mean on a
        # channels-last slice measured 4x slower, E[x^2]-E[x]^2 loses digits.
        mean = t.mean(dim=[2, 3], keepdim=True)
        d = t - mean
        var = (d * d).mean(dim=[2, 3], keepdim=True)
        rstd = torch.rsqrt(var + self.eps)
        n = y.size(0)
        scale = torch.cat((self.ones.expand(n, -1, -1, -1), rstd), 1)
        shift = torch.cat((self.zeros.expand(n, -1, -1, -1), -mean * rstd), 1)
        return torch.addcmul(shift, y, scale)


class IBNormRelu(nn.Module):
    """`HalfInstanceNorm` and the ReLU after it as one fused operator
    (`modnet::ibnorm_relu`, csrc/modnet_ops.cpp): one pass for the statistics, one to
    write, computed in float32 for bfloat16 tensors too, instead of six passes."""

    def __init__(self, split: int, relu: bool, eps: float = 1e-5):
        super().__init__()
        self.split = split
        self.relu = relu
        self.eps = eps

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.ops.modnet.ibnorm_relu(y, self.split, self.eps, self.relu)


def cat_resized(parts: List[torch.Tensor], factors: List[int]) -> torch.Tensor:
    """torch.cat(parts, 1), part i first resized by factors[i] (2: `up2`; -2 / -4: the
    image at 1/2 / 1/4, as F.interpolate bilinear), written in one pass into the result
    (`modnet::cat_resized`)."""
    return torch.ops.modnet.cat_resized(parts, factors)


class LRBranchFused(nn.Module):
    """LRBranch with its upsampling as `cat_resized` (same modules, same names)."""

    def __init__(self, src: LRBranch):
        super().__init__()
        self.se_block, self.conv_lr16x, self.conv_lr8x = src.se_block, src.conv_lr16x, src.conv_lr8x

    def forward(self, enc32x: torch.Tensor) -> torch.Tensor:
        enc32x = self.se_block(enc32x)
        lr16x = self.conv_lr16x(cat_resized([enc32x], [2]))
        return self.conv_lr8x(cat_resized([lr16x], [2]))


class HRBranchFused(nn.Module):
    """HRBranch with each resize-and-concatenate as one `cat_resized`."""

    def __init__(self, src: HRBranch):
        super().__init__()
        self.tohr_enc2x, self.conv_enc2x = src.tohr_enc2x, src.conv_enc2x
        self.tohr_enc4x, self.conv_enc4x = src.tohr_enc4x, src.conv_enc4x
        self.conv_hr4x, self.conv_hr2x = src.conv_hr4x, src.conv_hr2x

    def forward(
        self, img: torch.Tensor, enc2x: torch.Tensor, enc4x: torch.Tensor, lr8x: torch.Tensor
    ) -> torch.Tensor:
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(cat_resized([img, enc2x], [-2, 1]))
        enc4x = self.tohr_enc4x(enc4x)
        hr4x = self.conv_enc4x(cat_resized([hr4x, enc4x], [1, 1]))
        hr4x = self.conv_hr4x(cat_resized([hr4x, lr8x, img], [1, 2, -4]))
        return self.conv_hr2x(cat_resized([hr4x, enc2x], [2, 1]))


class FusionBranchFused(nn.Module):
    """FusionBranch with each resize-and-concatenate as one `cat_resized`."""

    def __init__(self, src: FusionBranch):
        super().__init__()
        self.conv_lr4x, self.conv_f2x, self.conv_f = src.conv_lr4x, src.conv_f2x, src.conv_f

    def forward(self, img: torch.Tensor, lr8x: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        lr4x = self.conv_lr4x(cat_resized([lr8x], [2]))
        f2x = self.conv_f2x(cat_resized([lr4x, hr2x], [2, 1]))
        f = self.conv_f(cat_resized([f2x, img], [2, 1]))
        return torch.sigmoid(f)


# Scalars of oneDNN's fused convolution (TorchScript wants this exact type).
Scalars = List[Optional[Union[int, float, complex]]]


class ConvAct(nn.Module):
    """A backbone convolution with its BatchNorm folded in (float32, before any cast)
    and its ReLU6 as oneDNN's post-op (`mkldnn::_convolution_pointwise`, "hardtanh"
    0..6): the clamp is applied while the output is written instead of in a pass of its
    own. `act` False: the plain convolution through the same operator."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, act: bool):
        super().__init__()
        folded = fuse_conv_bn_eval(conv.eval(), bn.eval())
        self.weight = nn.Parameter(folded.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(folded.bias.detach().clone(), requires_grad=False)
        self.padding: List[int] = [int(p) for p in conv.padding]
        self.stride: List[int] = list(conv.stride)
        self.dilation: List[int] = list(conv.dilation)
        self.groups = conv.groups
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        six: Scalars = [0.0, 6.0]
        none: Scalars = []
        if self.act:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups, "hardtanh", six, ""
            )
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups, "none", none, ""
        )


def conv_acts(seq: nn.Sequential) -> List[ConvAct]:
    """conv, BatchNorm[, ReLU6] triples of a backbone Sequential as ConvActs."""
    mods, out, i = list(seq), [], 0
    while i < len(mods):
        act = i + 2 < len(mods) and isinstance(mods[i + 2], nn.ReLU6)
        out.append(ConvAct(mods[i], mods[i + 1], act))
        i += 3 if act else 2
    return out


class InvertedResidualFused(nn.Module):
    """InvertedResidual as ConvActs, the residual add as the last convolution's
    binary post-op (one pass instead of the convolution's and the add's)."""

    def __init__(self, block: InvertedResidual):
        super().__init__()
        convs = conv_acts(block.conv)
        self.head = nn.Sequential(*convs[:-1])
        self.last = convs[-1]
        self.use_res_connect = block.use_res_connect

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        if not self.use_res_connect:
            return self.last(y)
        c = self.last
        none: Scalars = []
        return torch.ops.mkldnn._convolution_pointwise(
            y, x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "add", None, None, none, None
        )


def fuse_backbone(backbone: MobileNetV2Backbone) -> MobileNetV2Backbone:
    features = backbone.model.features
    for i in range(len(features)):
        block = features[i]
        if isinstance(block, InvertedResidual):
            features[i] = InvertedResidualFused(block)
        else:
            features[i] = nn.Sequential(*conv_acts(block))
    return backbone


def fuse(net: MODNet) -> MODNet:
    """`net` (IBNorms already `HalfInstanceNorm`) with the fused operators: each
    HalfInstanceNorm + ReLU as `IBNormRelu`, each branch's resizes and concatenations
    as `cat_resized`, the backbone's ReLU6s and residual adds as oneDNN post-ops of its
    convolutions (`fuse_backbone`). Loads the operators into this process
    (modnet.ops)."""
    from . import ops

    ops.load()
    for mod in list(net.modules()):
        if isinstance(mod, Conv2dIBNormRelu) and len(mod.layers) > 1 and isinstance(mod.layers[1], HalfInstanceNorm):
            relu = len(mod.layers) > 2
            layers: List[nn.Module] = [mod.layers[0], IBNormRelu(mod.layers[1].split, relu, mod.layers[1].eps)]
            mod.layers = nn.Sequential(*layers)
    net.backbone = fuse_backbone(net.backbone)
    net.lr_branch = LRBranchFused(net.lr_branch)
    net.hr_branch = HRBranchFused(net.hr_branch)
    net.f_branch = FusionBranchFused(net.f_branch)
    return net


class MODNetCpu(nn.Module):
    """MODNet rearranged for CPUs (oneDNN), same contract and same numbers within
    float rounding: every IBNorm's BatchNorm half folded into its convolution (eval
    mode), the instance-norm half as `HalfInstanceNorm`, and weights and activations
    in channels-last memory end to end, which oneDNN's convolutions use without
    reordering activations. With `fused` (the default, what is exported) the
    element-wise work runs as the operators of csrc/modnet_ops.cpp (`fuse`); without,
    it is plain ATen, the reference those are tested against. `input_channels_last()`
    tells the engine to hand it a channels-last input; any other input is converted
    once at the start."""

    def __init__(self, model: MODNet, fused: bool = True):
        super().__init__()
        m = copy.deepcopy(model).eval()
        for mod in list(m.modules()):
            if not isinstance(mod, Conv2dIBNormRelu) or len(mod.layers) < 2:
                continue
            ib = mod.layers[1]
            if not isinstance(ib, IBNorm):
                continue
            conv, bn, k = mod.layers[0], ib.bnorm, ib.bnorm_channels
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            with torch.no_grad():
                conv.weight[:k] *= s.view(-1, 1, 1, 1)
                conv.bias[:k] = (conv.bias[:k] - bn.running_mean) * s + bn.bias
            mod.layers[1] = HalfInstanceNorm(conv.out_channels, k)
        if fused:
            m = fuse(m)
        self.net = m.to(memory_format=torch.channels_last)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img.contiguous(memory_format=torch.channels_last)).contiguous()

    @torch.jit.export
    def input_channels_last(self) -> bool:
        return True


# --------------------------------------------------------------------------- bf16


class Bf16Conv(nn.Module):
    """A convolution in bfloat16 between float32 activations: its input rounded to
    bfloat16, its output back to float32, everything around it left in float32."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = copy.deepcopy(conv).to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.to(torch.bfloat16)).float()


class MODNetCpuBf16(nn.Module):
    """The CPU variant (`MODNetCpu`: IBNorm folded, channels-last, fused) in bfloat16
    for CPUs with AMX or AVX512-BF16, whose oneDNN convolutions then run at several
    times the float32 rate. The high-resolution and fusion branches (two thirds of the
    arithmetic) run in bfloat16; the low-resolution branch runs its convolutions in
    bfloat16 (`Bf16Conv`, a fifth of the arithmetic) but keeps its activations, norms and
    SE block in float32; the backbone (a tenth, mostly memory-bound depthwise work)
    stays float32. On the coffee photo (no person, an ambiguous matte) every other
    split failed the bounds: the backbone's pointwise convolutions alone in bf16 from
    block 11 on gave mean 1.6/255 and 3.0% of pixels past 16/255, the low-resolution
    branch with bf16 activations 0.08% past 16/255 and p99 6.4/255; this one keeps it at
    mean 0.22/255, p99 3.4/255, 0.025% past 16/255. Same contract: float32 in, float32
    out."""

    def __init__(self, model: MODNet, fused: bool = True):
        super().__init__()
        net = MODNetCpu(model, fused).net
        low = copy.deepcopy(net).to(torch.bfloat16)
        self.backbone = net.backbone
        lr = copy.deepcopy(net.lr_branch)
        for mod in list(lr.modules()):
            for name, child in list(mod.named_children()):
                if isinstance(child, nn.Conv2d):
                    setattr(mod, name, Bf16Conv(child))
        self.lr_branch = lr
        self.hr_branch = low.hr_branch
        self.f_branch = low.f_branch

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        img = img.contiguous(memory_format=torch.channels_last)
        enc = self.backbone(img)
        lr8x = self.lr_branch(enc[4]).to(torch.bfloat16)
        img_low = img.to(torch.bfloat16)
        hr2x = self.hr_branch(img_low, enc[0].to(torch.bfloat16), enc[1].to(torch.bfloat16), lr8x)
        return self.f_branch(img_low, lr8x, hr2x).float().contiguous()

    @torch.jit.export
    def input_channels_last(self) -> bool:
        return True
