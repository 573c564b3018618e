"""The configuration's sections: one frozen pydantic model per stage (`Config` holds them all);
an unknown key is refused (``extra="forbid"``). Each leaf field's ``description`` is its one-line
meaning: `nnrecipe.config.reference` turns the fields (type, default, bounds, description) into
README "Configuration"'s table, and tests/test_readme.py checks that the README holds that table.
Descriptions are markdown (backticks, formulas); write them for the table."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    source: str = Field("digits", description="bundled name (e.g. `digits`, `seq:reverse`), a .csv/.npz/.txt file "
                        "or an image folder (`--data`)")
    target: str | None = Field(None, description="label column of a CSV; null = the last column (`--target`)")
    task: Literal["classification", "regression", "tagging"] | None = Field(
        None, description="null = inferred (`--task`); tagging for `seq:tagging`, .conll files and tokens,tags CSVs")
    test_data: str | None = Field(None, description="labelled test file instead of a test split (`--test-data`)")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="validation share of all rows")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test share of all rows")
    standardize: bool = Field(True, description="vectors: x̂ = (x − μ)/σ per feature; images (conv nets): per "
                              "channel; train-split statistics")
    image_size: int | None = Field(None, ge=1, description="image folders: resize to S×S; null = the first image's "
                                   "size (`--image-size`)")
    channels: Literal[1, 3] | None = Field(None, description="image folders: force gray (1) or RGB (3); null = RGB "
                                           "if any image is colour")
    skip_bad_images: bool = Field(False, description="skip and count unreadable images instead of stopping "
                                  "(`--skip-bad-images`)")
    lazy: bool = Field(False, description="image folders: decode images batch by batch (a DataLoader) instead of "
                       "holding them all in memory")
    whiten: Literal["none", "pca", "zca", "patch_zca"] = Field(
        "none", description="whitening after standardization, fit on train (see *Images*)")
    whiten_eps: float = Field(1e-2, gt=0, description="ε in (Λ + εI)^−½")
    whiten_patch: int = Field(3, ge=1, description="`patch_zca`: k×k patches (k odd)")


class ModelConfig(_Section):
    name: Literal["mlp", "cnn", "resnet", "mobilenetv2", "vit", "rnn", "lstm", "gru", "seq2seq",
                  "transformer", "word2vec", "autoencoder", "vae", "gan", "captioner", "custom"] = Field(
        "mlp", description="architecture (`--model`); on sequence data (`seq:…`, text CSVs) `mlp` means lstm "
        "(classify, lm) or seq2seq; `custom` is the class in `model.class_path`")
    hidden: tuple[int, ...] = Field((256, 128), description="`mlp`: hidden layer widths")
    activation: Literal["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "relu6"] = Field(
        "relu", description="f in h = f(Wx + b)")
    negative_slope: float = Field(0.01, ge=0, description="leaky_relu slope a")
    dropout: float = Field(0.1, ge=0, lt=1, description="mlp: inverted dropout p after each hidden activation; "
                           "conv nets: before the classifier")
    norm: Literal["auto", "none", "batch", "layer", "group"] = Field(
        "auto", description="normalization before each activation; auto = none (mlp), batch (conv nets); group: "
        "G = largest divisor of the width ≤ 32")
    channels: tuple[int, ...] = Field((32, 64), description="`cnn`: width of each stage")
    convs_per_stage: int = Field(2, ge=1, description="`cnn`: 3×3 convs per stage")
    widths: tuple[int, ...] = Field((32, 64, 128), description="`resnet`: width of each stage")
    blocks: tuple[int, ...] = Field((2, 2, 2), description="`resnet`: basic blocks per stage")
    width_mult: float = Field(1.0, gt=0, description="`mobilenetv2`: width multiplier")
    last_channels: int = Field(256, ge=1, description="`mobilenetv2`: width of the final 1×1 conv")
    embed_dim: int = Field(64, ge=1, description="rnn/lstm/gru/seq2seq: token embedding size")
    rnn_hidden: int = Field(128, ge=1, description="rnn/lstm/gru/seq2seq: recurrent state size")
    num_layers: int = Field(1, ge=1, description="rnn/lstm/gru/seq2seq: stacked recurrent layers")
    bidirectional: bool = Field(False, description="recurrent classifiers and the seq2seq encoder: both "
                                "directions, states concatenated")
    cell: Literal["gru", "lstm", "rnn"] = Field("gru", description="seq2seq encoder/decoder cell")
    attention: Literal["additive", "dot", "general", "none"] = Field(
        "additive", description="seq2seq attention: Bahdanau, Luong dot/general, or none")
    dim: int = Field(64, ge=1, description="transformer/vit: width d")
    heads: int = Field(4, ge=1, description="transformer/vit: attention heads (d divisible by heads)")
    depth: int = Field(4, ge=1, description="transformer/vit: blocks")
    mlp_ratio: float = Field(4.0, gt=0, description="transformer/vit: block MLP hidden size = ratio·d")
    positions: Literal["sinusoidal", "learned"] = Field("sinusoidal", description="transformer: position encoding")
    patch_size: int = Field(2, ge=1, description="vit: p×p patches (image side divisible by p)")
    class_path: str | None = Field(None, description="custom: the user's `nn.Module` class as "
                                   "`package.module:Class` (set by `--model-class` or `fit(model=instance)`)")
    kwargs: dict = Field({}, description="custom: the class's constructor keyword arguments, JSON values "
                         "(`--model-kwargs`)")

    @model_validator(mode="after")
    def _custom_has_class(self):
        if self.name == "custom" and not self.class_path:
            raise ValueError("model.name custom needs model.class_path ('package.module:Class')")
        if self.class_path and ":" not in self.class_path:
            raise ValueError(f"model.class_path '{self.class_path}' is not 'package.module:Class'")
        return self

    @field_validator("hidden", "channels", "widths", "blocks")
    @classmethod
    def _positive_widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 for h in v):
            raise ValueError("every width/count must be >= 1")
        return v


class InitConfig(_Section):
    name: str = Field("auto", description="initialization scheme; see *Initialization*")
    std: float = Field(0.01, gt=0, description="σ of `normal`")
    mode: Literal["fan_in", "fan_out"] = Field("fan_in", description="fan for `kaiming_*`")
    gain: float | None = Field(None, description="gain for `xavier_*`/`orthogonal`; null = torch's "
                               "`calculate_gain(activation)`")
    lsuv_tol: float = Field(0.1, gt=0, description="LSUV: stop when |Var(y) − 1| < tol")
    lsuv_max_iter: int = Field(10, ge=1, description="LSUV: rescaling iterations per layer")
    zero_init_residual: bool = Field(True, description="zero the last layer/γ of residual branches")
    gate_bias: Literal["one", "chrono"] = Field("one", description="LSTM forget / GRU update gate biases: 1, or "
                                                "chrono init")
    chrono_max: int | None = Field(None, ge=3, description="chrono: longest dependency T_max; null = input length")
    base: str = Field("auto", description="`metainit`/`gradinit`: the draw whose scales they learn "
                      "(`keep`: a user's own weights)")
    learn_steps: int = Field(100, ge=1, description="`metainit`/`gradinit`: optimization steps on the scales")
    learn_batches: int = Field(4, ge=2, description="`metainit`/`gradinit`: training batches (of "
                               "`train.batch_size`) they cycle through")
    metainit_lr: float = Field(0.1, gt=0, description="MetaInit: signed step on each ‖W‖")
    metainit_momentum: float = Field(0.9, ge=0, lt=1, description="MetaInit: momentum of those steps")
    gradinit_lr: float = Field(1e-2, gt=0, description="GradInit: Adam's τ on the scales α")
    gradinit_gamma: float | None = Field(None, gt=0, description="GradInit: bound γ on ‖g‖_p; null = 10 × its "
                                         "value at the draw")
    gradinit_min_scale: float = Field(0.01, gt=0, description="GradInit: α ≥ α_min")


class OptimizerConfig(_Section):
    name: str = Field("adamw", description="see *Optimizers*")
    lr: float | None = Field(None, gt=0, description="base LR η₀; null = the optimizer's default from practice")
    weight_decay: float = Field(0.05, ge=0, description="λ: decoupled for adamw, coupled (torch's) otherwise; "
                                "never on biases/norms")
    momentum: float = Field(0.9, ge=0, lt=1, description="μ for sgd")
    nesterov: bool = Field(False, description="Nesterov momentum (sgd, classic style)")
    momentum_style: Literal["classic", "ema"] = Field("classic", description="classic v = μv + g, or ema "
                                                      "v = μv + (1−μ)g")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam (β₁, β₂)")
    eps: float = Field(1e-8, gt=0, description="ε in the adaptive denominators")
    alpha: float = Field(0.9, gt=0, lt=1, description="RMSProp smoothing β")
    rho: float = Field(0.9, gt=0, lt=1, description="Adadelta ρ")
    hypergrad_lr: float = Field(1e-4, ge=0, description="`sgd_hd`/`adam_hd`: step size β of the LR update")
    lookahead: bool = Field(False, description="wrap in Lookahead")
    lookahead_k: int = Field(5, ge=1, description="Lookahead k")
    lookahead_alpha: float = Field(0.5, gt=0, le=1, description="Lookahead α")


class WarmupConfig(_Section):
    steps: int | None = Field(None, ge=0, description="warm-up steps w; wins over fraction")
    fraction: float = Field(0.05, ge=0, lt=1, description="w = round(fraction·T)")
    start_factor: float = Field(0.0, ge=0, le=1, description="LR at step 0 = start_factor·η₀")


class ScheduleConfig(_Section):
    name: str = Field("auto", description="`auto`: inverse_sqrt for transformer (Vaswani et al.), cosine otherwise; "
                      "see *LR schedules*")
    warmup: WarmupConfig = WarmupConfig()
    min_lr_factor: float = Field(0.0, ge=0, le=1, description="η_min = factor·η₀ (cosine, linear, restarts, "
                                 "plateau, one_cycle floor)")
    step_size: int | None = Field(None, ge=1, description="`step`: s; null: ⌈T'/3⌉ (÷(1/γ) at 1/3 and 2/3 of the "
                                  "run after warm-up)")
    gamma: float = Field(0.1, gt=0, description="`step`/`multistep`/`exp_range`: γ")
    milestones: tuple[float, ...] = Field((0.5, 0.75), description="`multistep`: fractions of the run (all < 1) "
                                          "or steps")
    decay: float = Field(1e-3, ge=0, description="`exponential`: κ")
    restart_period: int = Field(1000, ge=1, description="`cosine_restarts`: T₀")
    restart_mult: int = Field(2, ge=1, description="`cosine_restarts`: T_mult")
    max_lr_factor: float = Field(10.0, ge=1, description="`cyclic`: peak = factor·η₀ (`one_cycle`: η₀ is the "
                                 "peak)")
    pct_start: float = Field(0.3, gt=0, lt=1, description="`one_cycle`: share of steps rising")
    cycle_steps: int = Field(2000, ge=2, description="`cyclic`: cycle length")
    cyclic_mode: Literal["triangular", "triangular2", "exp_range"] = Field("triangular",
                                                                           description="`cyclic` variant")
    plateau_patience: int = Field(5, ge=0, description="`plateau`: epochs without improvement")
    plateau_factor: float = Field(0.1, gt=0, lt=1, description="`plateau`: LR factor per reduction")


class ClipConfig(_Section):
    name: Literal["none", "norm", "value", "agc", "layer_norm", "autoclip"] = Field(
        "norm", description="see *Gradient clipping*")
    threshold: float = Field(1.0, ge=0, description="τ (λ for agc); 0 disables; not used by autoclip")
    percentile: float = Field(10.0, gt=0, le=100, description="`autoclip`: τ = this percentile of the gradient "
                              "norms so far")
    exempt_head: bool = Field(True, description="`agc`: leave the final linear layer unclipped (Brock et al. 2021)")


class RegularizationConfig(_Section):
    l1: float = Field(0.0, ge=0, description="λ of λΣ|w|")
    l2: float = Field(0.0, ge=0, description="λ of (λ/2)Σw²")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="ε of the smoothed targets")


class TrainConfig(_Section):
    epochs: int = Field(60, ge=1, description="maximum epochs (`--epochs`)")
    batch_size: int = Field(64, ge=1, description="rows per mini-batch")
    patience: int = Field(30, ge=0, description="early-stopping patience in epochs without val-loss improvement; "
                          "0 = never stop early (best weights still restored)")
    tensorboard: bool = Field(False, description="TensorBoard event files in `RUN/tensorboard/` (`--tensorboard`; "
                              "needs `nnrecipe[tensorboard]`)")
    min_delta: float = Field(0.0, ge=0, description="smallest val-loss decrease that counts as improvement")
    restore_best: bool = Field(True, description="end of fit: restore the weights of the best val-loss epoch; "
                               "`false` keeps the last epoch's (to study an overfit, overconfident model)")
    seed: int = Field(0, description="seed for split, init, dropout, batch order (`--seed`)")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto = cuda, else mps, else cpu "
                                                          "(`--device`)")
    log_every: int = Field(50, ge=1, description="steps between host syncs (progress, grad-norm logging, NaN check "
                           "on accelerators)")
    curvature_every: int = Field(0, ge=0, description="epochs between λmax / Hessian-trace measurements; 0 = off")
    profile: Literal["off", "on", "trace"] = Field(
        "off", description="per-epoch phase times, samples/s, peak memory (`--profile`); trace: + a torch.profiler "
        "trace in `RUN/profile/`")
    nan_policy: Literal["stop", "skip"] = Field(
        "stop", description="stop: end the run at a NaN/Inf step (last good weights kept); skip: drop the step and "
        "halve the LR (CPU)")
    scale_lr: bool = Field(False, description="linear scaling rule η₀·B/B_ref (`--scale-lr`)")
    reference_batch_size: int = Field(64, ge=1, description="B_ref of the linear scaling rule")
    ensemble: int = Field(1, ge=1, description="K members, seeds seed…seed+K−1 on one split, probabilities "
                          "averaged (`--ensemble`)")
    checkpoint_every_steps: int | None = Field(None, ge=1, description="also checkpoint every N optimizer steps "
                                               "(`--checkpoint-every-steps`); every epoch always")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept, plus the best end-of-epoch one "
                                  "by val loss")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype; fp16 (CUDA only) adds a GradScaler (`--precision`)")
    compile: bool = Field(False, description="torch.compile the model; falls back to eager when unsupported "
                          "(`--compile`)")
    channels_last: Literal["auto"] | bool = Field("auto", description="NHWC memory format for conv nets; auto = on "
                                                  "CUDA only")
    accumulate: int = Field(1, ge=1, description="micro-batches of batch_size per optimizer step (`--accumulate`)")
    loader: Literal["auto", "tensor", "dataloader"] = Field(
        "auto", description="batches by tensor indexing or through a DataLoader; auto = tensor indexing for "
        "in-memory data")
    workers: int = Field(0, ge=0, description="DataLoader worker processes (`loader: dataloader`, lazy images)")
    pin_memory: Literal["auto"] | bool = Field("auto", description="page-locked batches; auto = on for CUDA")
    persistent_workers: bool = Field(False, description="keep DataLoader workers alive between epochs")

    @field_validator("profile", mode="before")
    @classmethod
    def _profile_switch(cls, value):
        # YAML reads a bare on/off as a boolean: `--set train.profile=on` must still mean "on"
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class TextAugmentConfig(_Section):
    """EDA on the training rows of word-level text classification (`nnrecipe.data.text_augment`).
    Each rate is the paper's α of one operation; None takes `alpha`; 0 turns the operation off."""
    alpha: float = Field(0.0, ge=0, le=1, description="EDA (word-level text classification): α of each operation "
                         "whose own rate is null; 0 = off")
    alpha_sr: float | None = Field(None, ge=0, le=1, description="synonym replacement: n = max(1, ⌊α·l⌋) words; "
                                   "null = `alpha`, 0 = off")
    alpha_ri: float | None = Field(None, ge=0, le=1, description="random insertion of n synonyms; null = `alpha`")
    alpha_rs: float | None = Field(None, ge=0, le=1, description="random swap of two words, n times; null = `alpha`")
    p_rd: float | None = Field(None, ge=0, lt=1, description="random deletion: each word with probability p; "
                               "null = `alpha`")
    prob: float = Field(0.9, ge=0, le=1, description="probability that a drawn training row is augmented "
                        "(n_aug/(n_aug+1))")
    synonyms: str | None = Field(None, description="synonyms file: one `word syn1 syn2 …` line per word")
    synonyms_from: str | None = Field(None, description="a word2vec run directory: its nearest neighbours are the "
                                      "synonyms")
    neighbours: int = Field(5, ge=1, description="`synonyms_from`: nearest words kept per word")
    min_similarity: float = Field(0.5, ge=-1, le=1, description="`synonyms_from`: cosine threshold")
    stopwords: Literal["english", "none"] = Field(
        "english", description="words never replaced nor used as an insertion's source (a small built-in list)")
    extend_vocab: bool = Field(True, description="add the synonyms of training words to the vocabulary")

    def rates(self) -> dict[str, float]:
        """{"sr", "ri", "rs", "rd"} → the rate in use (`alpha` where an operation's own is None)."""
        own = {"sr": self.alpha_sr, "ri": self.alpha_ri, "rs": self.alpha_rs, "rd": self.p_rd}
        return {op: self.alpha if rate is None else rate for op, rate in own.items()}

    @property
    def active(self) -> bool:
        return self.prob > 0 and any(rate > 0 for rate in self.rates().values())

    @model_validator(mode="after")
    def _synonyms_for_the_operations(self):
        rates, given = self.rates(), [k for k in ("synonyms", "synonyms_from") if getattr(self, k)]
        if len(given) == 2:
            raise ValueError("give augment.text.synonyms or augment.text.synonyms_from, not both")
        if self.active and not given and (rates["sr"] > 0 or rates["ri"] > 0):
            raise ValueError("synonym replacement and insertion (alpha_sr, alpha_ri) need augment.text.synonyms "
                             "(a file) or augment.text.synonyms_from (a word2vec run), or set both rates to 0")
        if given and not self.active:
            raise ValueError(f"augment.text.{given[0]} is set but no EDA operation is on: set augment.text.alpha")
        return self


class AugmentConfig(_Section):
    """Image augmentation on training batches only (vectors are never augmented); `text`: EDA."""
    enabled: bool = Field(True, description="augment training batches of image data")
    # off by default: digits and text are not mirror-symmetric
    hflip: bool = Field(False, description="random horizontal flip (p = 0.5); turn on for natural images")
    crop_padding: int = Field(1, ge=0, description="random crop of the zero-padded image: shift up to ±p px")
    resized_crop_scale: float = Field(1.0, gt=0, le=1, description="random resized crop: min area fraction "
                                      "(1 = off)")
    rotation: float = Field(10.0, ge=0, le=180, description="random rotation up to ± degrees")
    brightness: float = Field(0.0, ge=0, description="brightness jitter b (in units of σ)")
    contrast: float = Field(0.0, ge=0, lt=1, description="contrast jitter c: factor U(1−c, 1+c)")
    erasing: float = Field(0.0, ge=0, le=1, description="random erasing probability per image")
    erasing_scale: float = Field(0.25, gt=0, lt=1, description="max area fraction of an erased box")
    mixup: float = Field(0.0, ge=0, description="mixup Beta(α, α); 0 = off")
    cutmix: float = Field(0.0, ge=0, description="cutmix Beta(α, α); 0 = off")
    mix_prob: float = Field(1.0, ge=0, le=1, description="probability a batch is mixed")
    text: TextAugmentConfig = TextAugmentConfig()


class TransferConfig(_Section):
    init_from: str | None = Field(None, description="pretrained run directory or weights file "
                                  "(.safetensors/.pt state dict) (`--init-from`)")
    lr_factor: float = Field(0.1, gt=0, description="with `init_from`: LR × factor (fine-tuning default 1/10)")
    freeze: str | None = Field(None, description="`backbone` or `up_to=<layer group>` (`--freeze`)")
    unfreeze_at: int | None = Field(None, ge=1, description="epoch at which frozen groups train again "
                                    "(`--unfreeze`)")
    gradual: bool = Field(False, description="thaw one group per epoch, top first, ULMFiT (`--gradual-unfreeze`)")
    discriminative: float = Field(1.0, ge=1, description="group k below the head trains at η/factorᵏ "
                                  "(`--discriminative-lr`)")


class PeftConfig(_Section):
    """Parameter-efficient fine-tuning of the transfer.init_from base (`nnrecipe.training.peft`)."""
    method: Literal["none", "lora", "adapter", "prompt"] = Field(
        "none", description="parameter-efficient fine-tuning of the `transfer.init_from` base (`--peft`)")
    rank: int = Field(8, ge=1, description="`lora`: rank r (`--peft-rank`)")
    alpha: float = Field(16.0, gt=0, description="`lora`: the update is scaled by alpha / rank (`--peft-alpha`)")
    targets: tuple[str, ...] = Field((), description="layer names (substrings) or globs, a list or one "
                                     "comma-separated string; [] = every Linear (+ Conv2d for lora) but the head "
                                     "(`--peft-targets`)")
    adapter_hidden: int = Field(16, ge=1, description="`adapter`: bottleneck width m")
    prompt_tokens: int = Field(8, ge=1, description="`prompt`: learned prefix vectors")

    @field_validator("targets", mode="before")
    @classmethod
    def _split_targets(cls, v):
        return tuple(s.strip() for s in v.split(",") if s.strip()) if isinstance(v, str) else v


class AdversarialConfig(_Section):
    """Adversarial training (`nnrecipe.post.adversarial`); eps and step_size in raw input units."""
    method: Literal["none", "fgsm", "pgd"] = Field("none", description="adversarial training: the attack that "
                                                   "perturbs training batches (`--adversarial`)")
    eps: float = Field(1.0, gt=0, description="L∞ radius in raw input units, digits: pixel values 0–16 "
                       "(`--adv-eps`)")
    steps: int = Field(7, ge=1, description="`pgd`: attack steps per training batch (`--adv-steps`)")
    step_size: float | None = Field(None, gt=0, description="`pgd`: step size in raw input units; null = "
                                    "2.5·eps/steps (Madry et al. 2018)")
    eval_steps: int = Field(10, ge=1, description="PGD steps of the robust accuracy reported after fit")
    raw_range: tuple[float, float] | None = Field(None, description="valid raw input range [low, high]; null = "
                                                  "[0, 16] for digits, else unclamped")


class CalibrationConfig(_Section):
    temperature: bool = Field(True, description="fit T on the validation split")
    ece_bins: int = Field(15, ge=1, description="equal-width bins for ECE")


class TextConfig(_Section):
    """Sequence data: the generated `seq:NAME` tasks and text CSVs (classification or parallel)."""
    task_size: int | None = Field(None, ge=10, description="`seq:NAME` tasks: training examples (characters for "
                                  "charlm); null = the task's default")
    level: Literal["auto", "char", "word"] = Field(
        "auto", description="tokenizer level; auto: word when the median text has ≥ 3 words, else char; char for "
        "seq: tasks and .txt corpora (the value used goes to config.yaml)")
    text_column: str | None = Field(None, description="text-classification CSV: input column; null: `text`, else "
                                    "the one free-text column (`--text-column`)")
    label_column: str | None = Field(None, description="text-classification CSV: label column; null: "
                                     "`data.target`, else `label`, else the last column")
    source_column: str = Field("source", description="parallel CSV (seq2seq, used when both columns exist): input "
                               "column")
    target_column: str = Field("target", description="parallel CSV: output column")
    min_freq: int = Field(1, ge=1, description="vocabulary: rarer tokens become `<unk>`")
    max_vocab: int | None = Field(None, ge=5, description="vocabulary size cap, specials included")
    max_len: int = Field(256, ge=1, description="longer inputs are truncated (tokens)")
    bucketing: bool = Field(True, description="classify/seq2seq/tagging training: batches of similar lengths, each "
                            "cut to its longest row (`nnrecipe/training/buckets.py`)")
    reverse_numbers: bool = Field(False, description="every digit run least-significant digit first inside the "
                                  "model; inputs, outputs and metrics keep numbers as written (`true` for "
                                  "seq:addition)")
    block_size: int = Field(64, ge=2, description="language models: training window (tokens)")
    tbptt: int | None = Field(None, ge=1, description="recurrent language models: gradient truncated every k steps")
    teacher_forcing: float = Field(1.0, ge=0, le=1, description="seq2seq training: probability of feeding the gold "
                                   "previous token")
    beam: int = Field(1, ge=1, description="seq2seq decoding: 1 = greedy, > 1 = beam search")
    length_penalty: float = Field(0.6, ge=0, description="beam search: GNMT α in ((5 + length)/6)^α")
    sample_temperature: float = Field(0.8, gt=0, description="language models: τ of the sample written after fit")
    sample_length: int = Field(200, ge=1, description="language models: tokens sampled after fit")


class TaggingConfig(_Section):
    """Sequence tagging CSVs (`nnrecipe.data.tagged_text`): one sentence per row."""
    tokens_column: str = Field("tokens", description="tagging CSV: space-separated tokens")
    tags_column: str = Field("tags", description="tagging CSV: space-separated tags, one per token")


class Word2VecConfig(_Section):
    """`model.name: word2vec` runs; names follow gensim's (`sg`, `window`, `negative`, `min_count`,
    `sample`, `ns_exponent`); the LR is `lr` (gensim's alpha), the vector size `dim`."""
    sg: Literal[0, 1] = Field(1, description="1: skip-gram, 0: CBOW (mean of the window's vectors)")
    dim: int = Field(100, ge=1, description="vector size D")
    window: int = Field(5, ge=1, description="max distance; each center word uses b ~ U{1..window}")
    negative: int = Field(5, ge=1, description="noise words per positive pair (negative sampling)")
    ns_exponent: float = Field(0.75, description="noise distribution ∝ count^α")
    min_count: int = Field(5, ge=1, description="rarer words are dropped")
    max_vocab: int | None = Field(None, ge=1, description="keep only the most frequent words; null = no cap")
    sample: float = Field(1e-3, ge=0, description="subsampling threshold t; 0 keeps every token")
    lr: float | None = Field(None, gt=0, description="LR (gensim's alpha); null = 0.025 skip-gram, 0.05 CBOW "
                             "(word2vec.c)")
    min_lr_factor: float = Field(1e-4, ge=0, le=1, description="the LR decays linearly to lr·factor")
    batch_size: int = Field(1024, ge=1, description="positive pairs (sg) or windows (cbow) per SGD step")
    threads: int | None = Field(1, ge=1, description="torch intra-op threads while training; null = torch's "
                                "default")
    analogies: str | None = Field(None, description="questions-words file scored after fit (w2v:synthetic: its "
                                  "own)")


class GenerativeConfig(_Section):
    """`model.name: autoencoder | vae | gan` runs (`nnrecipe.generative`); pixels are scaled to [0, 1]."""
    arch: Literal["mlp", "conv"] = Field("mlp", description="encoder/decoder (AE, VAE) or D/G (GAN) family")
    latent_dim: int = Field(16, ge=1, description="size of the code z")
    hidden: tuple[int, ...] = Field((256, 128), description="`mlp`: encoder / discriminator widths; decoder / "
                                    "generator mirrored")
    channels: tuple[int, ...] = Field((64, 128), description="`conv`: widths of the stride-2 stages; decoder / "
                                      "generator reversed")
    beta: float = Field(1.0, ge=0, description="VAE: loss = reconstruction + β·KL")
    recon_loss: Literal["bce", "mse"] = Field("bce", description="autoencoder training loss (the VAE is always "
                                              "Bernoulli)")
    real_label: float = Field(0.9, ge=0, le=1, description="GAN: D's target for real images (one-sided "
                              "smoothing)")
    fake_label: float = Field(0.0, ge=0, le=1, description="GAN: D's target for generated images")
    grid: int = Field(8, ge=1, description="sample grids are grid × grid images")
    snapshots: int = Field(4, ge=0, description="GAN: fixed-noise grids saved at this many evenly spaced epochs")
    embedding: Literal["pca", "tsne"] = Field("pca", description="plots/latent.png: 2-D projection of the test "
                                              "codes")
    eval_samples: int = Field(1000, ge=10, description="generated images scored by the judge classifier")
    judge: str | None = Field(None, description="classifier RUN_DIR for the scores; null = train one into "
                              "RUN/judge; `none`: skip")
    judge_epochs: int = Field(15, ge=1, description="epochs of the judge trained when `judge` is null")

    @field_validator("hidden", "channels")
    @classmethod
    def _positive_widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(h < 1 for h in v):
            raise ValueError("give at least one width, every width >= 1")
        return v


class CaptionConfig(_Section):
    """`model.name: captioner` runs (`nnrecipe.tasks.captioning`): the encoder's widths are model.channels /
    convs_per_stage (cnn) or model.widths / blocks (resnet), the decoder's model.embed_dim / rnn_hidden."""
    encoder: Literal["cnn", "resnet"] = Field("cnn", description="captioner: the conv stages whose feature grid is "
                                              "attended over")
    cell: Literal["lstm", "gru"] = Field("lstm", description="captioner: decoder cell")
    attention_dim: int = Field(64, ge=1, description="captioner: additive attention's hidden size")
    gate: bool = Field(True, description="captioner: the gate β_t = σ(f_β(h_{t−1})) scales the context (Xu et al. "
                       "§4.2.1)")
    attention_reg: float = Field(1.0, ge=0, description="captioner: λ of the doubly stochastic penalty "
                                 "λ Σ_i (1 − Σ_t α_ti)²")
    teacher_forcing: float = Field(1.0, ge=0, le=1, description="captioner training: probability of feeding the "
                                   "gold previous word")
    beam: int = Field(3, ge=1, description="captioner decoding: 1 = greedy, > 1 = beam search")
    length_penalty: float = Field(0.6, ge=0, description="captioner beam search: GNMT α")
    max_len: int = Field(20, ge=1, description="captioner: words per caption (longer ones cut in training; decoding "
                         "stops there)")
    min_freq: int = Field(1, ge=1, description="captioner vocabulary: rarer words become `<unk>`")
    max_vocab: int | None = Field(None, ge=5, description="captioner vocabulary size cap, specials included")
    task_size: int | None = Field(None, ge=10, description="cap:digits: training canvases; null = 2000")
    samples: int = Field(6, ge=0, description="test images drawn in plots/captions.png with their caption and "
                         "attention maps")


class Config(_Section):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    init: InitConfig = InitConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    clip: ClipConfig = ClipConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    train: TrainConfig = TrainConfig()
    augment: AugmentConfig = AugmentConfig()
    transfer: TransferConfig = TransferConfig()
    peft: PeftConfig = PeftConfig()
    adversarial: AdversarialConfig = AdversarialConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    text: TextConfig = TextConfig()
    tagging: TaggingConfig = TaggingConfig()
    word2vec: Word2VecConfig = Word2VecConfig()
    generative: GenerativeConfig = GenerativeConfig()
    caption: CaptionConfig = CaptionConfig()
