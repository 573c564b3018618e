"""The configuration's sections: one frozen pydantic model per stage (`Config` holds them all);
an unknown key is refused (``extra="forbid"``). Each field's comment is its documentation
(README "Configuration" lists every key; tests/test_readme.py checks that)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    source: str = "digits"
    target: str | None = None  # label column of a CSV; default: the last column
    task: Literal["classification", "regression", "tagging"] | None = None  # None: inferred (tagging: `is_tagging_run`)
    test_data: str | None = None  # a separate labelled test file instead of a test split
    val_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    standardize: bool = True  # vectors: per-feature z-score; images (conv/vit models): per-channel
    image_size: int | None = Field(None, ge=1)  # image folders: resize to S×S (None: the first image's size)
    channels: Literal[1, 3] | None = None  # image folders: force gray (1) or RGB (3); None: RGB if any is colour
    skip_bad_images: bool = False  # skip unreadable images (and count them) instead of stopping
    lazy: bool = False  # image folders: decode images batch by batch (DataLoader) instead of holding them in memory
    whiten: Literal["none", "pca", "zca", "patch_zca"] = "none"  # after standardization, fit on train
    whiten_eps: float = Field(1e-2, gt=0)  # ε in (Λ + εI)^(−1/2)
    whiten_patch: int = Field(3, ge=1)  # patch_zca: k×k patches (odd)


class ModelConfig(_Section):
    name: Literal["mlp", "cnn", "resnet", "mobilenetv2", "vit", "rnn", "lstm", "gru", "seq2seq",
                  "transformer", "word2vec", "autoencoder", "vae", "gan", "captioner", "custom"] = "mlp"  # sequence data (seq:…, text CSVs): mlp means lstm/seq2seq by task
    hidden: tuple[int, ...] = (256, 128)  # mlp
    activation: Literal["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "relu6"] = "relu"
    negative_slope: float = Field(0.01, ge=0)  # leaky_relu only
    dropout: float = Field(0.1, ge=0, lt=1)  # mlp: after each hidden layer; conv nets: before the classifier
    norm: Literal["auto", "none", "batch", "layer", "group"] = "auto"  # auto: none for mlp, batch for conv nets
    channels: tuple[int, ...] = (32, 64)  # cnn: width per stage
    convs_per_stage: int = Field(2, ge=1)  # cnn
    widths: tuple[int, ...] = (32, 64, 128)  # resnet: width per stage
    blocks: tuple[int, ...] = (2, 2, 2)  # resnet: basic blocks per stage
    width_mult: float = Field(1.0, gt=0)  # mobilenetv2
    last_channels: int = Field(256, ge=1)  # mobilenetv2: width of the final 1×1 conv
    embed_dim: int = Field(64, ge=1)  # rnn/lstm/gru/seq2seq: token embedding size
    rnn_hidden: int = Field(128, ge=1)  # rnn/lstm/gru/seq2seq: recurrent state size
    num_layers: int = Field(1, ge=1)  # rnn/lstm/gru/seq2seq: stacked recurrent layers
    bidirectional: bool = False  # rnn/lstm/gru classifiers and the seq2seq encoder
    cell: Literal["gru", "lstm", "rnn"] = "gru"  # seq2seq: encoder/decoder cell
    attention: Literal["additive", "dot", "general", "none"] = "additive"  # seq2seq: Bahdanau / Luong
    dim: int = Field(64, ge=1)  # transformer/vit: model width d
    heads: int = Field(4, ge=1)  # transformer/vit: attention heads (d divisible by heads)
    depth: int = Field(4, ge=1)  # transformer/vit: blocks
    mlp_ratio: float = Field(4.0, gt=0)  # transformer/vit: MLP hidden = ratio · d
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"  # transformer
    patch_size: int = Field(2, ge=1)  # vit: p×p patches (image side divisible by p)
    class_path: str | None = None  # custom: the user's nn.Module class as "package.module:Class"
    kwargs: dict = {}  # custom: the class's constructor keyword arguments (JSON values)

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
    name: str = "auto"
    std: float = Field(0.01, gt=0)  # `normal` only
    mode: Literal["fan_in", "fan_out"] = "fan_in"  # kaiming_* only
    gain: float | None = None  # xavier_*/orthogonal; None: torch.nn.init.calculate_gain(activation)
    lsuv_tol: float = Field(0.1, gt=0)
    lsuv_max_iter: int = Field(10, ge=1)
    zero_init_residual: bool = True
    gate_bias: Literal["one", "chrono"] = "one"  # LSTM/GRU gate biases: forget bias 1, or chrono init
    chrono_max: int | None = Field(None, ge=3)  # chrono: longest dependency T_max (None: input length)
    base: str = "auto"  # metainit/gradinit: the draw whose scales they then learn (any other init.name)
    learn_steps: int = Field(100, ge=1)  # metainit/gradinit: optimization steps on the scales
    learn_batches: int = Field(4, ge=2)  # metainit/gradinit: training batches (of train.batch_size) they cycle
    metainit_lr: float = Field(0.1, gt=0)  # metainit: signed step on each ‖W‖ (the paper's 0.1)
    metainit_momentum: float = Field(0.9, ge=0, lt=1)
    gradinit_lr: float = Field(1e-2, gt=0)  # gradinit: Adam's τ on the scales α
    gradinit_gamma: float | None = Field(None, gt=0)  # gradinit: bound γ on ‖g‖_p; None: its value at the draw
    gradinit_min_scale: float = Field(0.01, gt=0)  # gradinit: α ≥ α_min


class OptimizerConfig(_Section):
    name: str = "adamw"
    lr: float | None = Field(None, gt=0)  # None: the optimizer's default from practice
    weight_decay: float = Field(0.05, ge=0)  # decoupled for adamw, coupled (torch's) otherwise
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    momentum_style: Literal["classic", "ema"] = "classic"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    alpha: float = Field(0.9, gt=0, lt=1)  # RMSProp's smoothing constant (β)
    rho: float = Field(0.9, gt=0, lt=1)  # Adadelta
    hypergrad_lr: float = Field(1e-4, ge=0)  # sgd_hd / adam_hd: step size β of the LR update
    lookahead: bool = False
    lookahead_k: int = Field(5, ge=1)
    lookahead_alpha: float = Field(0.5, gt=0, le=1)


class WarmupConfig(_Section):
    steps: int | None = Field(None, ge=0)  # absolute steps; wins over fraction
    fraction: float = Field(0.05, ge=0, lt=1)
    start_factor: float = Field(0.0, ge=0, le=1)


class ScheduleConfig(_Section):
    name: str = "auto"  # auto: inverse_sqrt for transformer (Vaswani et al.), cosine otherwise
    warmup: WarmupConfig = WarmupConfig()
    min_lr_factor: float = Field(0.0, ge=0, le=1)  # η_min = factor · η₀ (cosine, linear, restarts, plateau, one_cycle floor)
    step_size: int | None = Field(None, ge=1)  # step: s; None: ⌈T'/3⌉ (decays at 1/3 and 2/3 of the run)
    gamma: float = Field(0.1, gt=0)  # step / multistep / exp_range factor
    milestones: tuple[float, ...] = (0.5, 0.75)  # multistep; fractions of the run if all < 1
    decay: float = Field(1e-3, ge=0)  # exponential: κ
    restart_period: int = Field(1000, ge=1)  # cosine_restarts: T_0
    restart_mult: int = Field(2, ge=1)  # cosine_restarts: T_mult
    max_lr_factor: float = Field(10.0, ge=1)  # cyclic: peak = factor · η₀ (one_cycle: η₀ is the peak)
    pct_start: float = Field(0.3, gt=0, lt=1)  # one_cycle
    cycle_steps: int = Field(2000, ge=2)  # cyclic: full cycle length
    cyclic_mode: Literal["triangular", "triangular2", "exp_range"] = "triangular"
    plateau_patience: int = Field(5, ge=0)  # plateau (epochs)
    plateau_factor: float = Field(0.1, gt=0, lt=1)


class ClipConfig(_Section):
    name: Literal["none", "norm", "value", "agc", "layer_norm", "autoclip"] = "norm"
    threshold: float = Field(1.0, ge=0)  # 0 disables clipping; not used by autoclip
    percentile: float = Field(10.0, gt=0, le=100)  # autoclip: τ = this percentile of the norms so far
    exempt_head: bool = True  # agc: leave the final linear layer unclipped (Brock et al. 2021)


class RegularizationConfig(_Section):
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)


class TrainConfig(_Section):
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(64, ge=1)
    patience: int = Field(30, ge=0)  # epochs without val-loss improvement; 0 disables
    tensorboard: bool = False  # TensorBoard event files in RUN/tensorboard/ (needs nnrecipe[tensorboard])
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True  # end of fit: the weights of the best val-loss epoch (False: the last epoch's)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    log_every: int = Field(50, ge=1)  # steps between host syncs for progress/grad-norm logging
    curvature_every: int = Field(0, ge=0)  # epochs between λmax / Hessian-trace measurements (0: off)
    profile: Literal["off", "on", "trace"] = "off"  # per-epoch phase times (on); + a torch.profiler trace (trace)
    nan_policy: Literal["stop", "skip"] = "stop"  # skip: drop the non-finite step and halve the LR
    scale_lr: bool = False  # linear scaling rule: η = η_ref · batch_size / reference_batch_size
    reference_batch_size: int = Field(64, ge=1)
    ensemble: int = Field(1, ge=1)  # K members with seeds seed…seed+K−1, probabilities averaged
    checkpoint_every_steps: int | None = Field(None, ge=1)  # also checkpoint every N steps (always: every epoch)
    keep_checkpoints: int = Field(2, ge=1)  # newest K checkpoints kept, plus the best by val loss
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype; fp16 (CUDA only) adds a GradScaler
    compile: bool = False  # torch.compile the model; falls back to eager when unsupported
    channels_last: Literal["auto"] | bool = "auto"  # NHWC for conv nets; auto: on CUDA only
    accumulate: int = Field(1, ge=1)  # micro-batches of batch_size per optimizer step
    loader: Literal["auto", "tensor", "dataloader"] = "auto"  # auto: tensor indexing for in-memory data
    workers: int = Field(0, ge=0)  # DataLoader worker processes (loader=dataloader)
    pin_memory: Literal["auto"] | bool = "auto"  # page-locked batches; auto: on for CUDA
    persistent_workers: bool = False  # keep DataLoader workers alive between epochs

    @field_validator("profile", mode="before")
    @classmethod
    def _profile_switch(cls, value):
        # YAML reads a bare on/off as a boolean: `--set train.profile=on` must still mean "on"
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class TextAugmentConfig(_Section):
    """EDA on the training rows of word-level text classification (`nnrecipe.data.text_augment`).
    Each rate is the paper's α of one operation; None takes `alpha`; 0 turns the operation off."""
    alpha: float = Field(0.0, ge=0, le=1)  # α of every operation whose own rate is None; 0 = EDA off
    alpha_sr: float | None = Field(None, ge=0, le=1)  # synonym replacement: n = max(1, ⌊α·l⌋) words
    alpha_ri: float | None = Field(None, ge=0, le=1)  # random insertion of n synonyms
    alpha_rs: float | None = Field(None, ge=0, le=1)  # random swap, n times
    p_rd: float | None = Field(None, ge=0, lt=1)  # random deletion: each word with probability p
    prob: float = Field(0.9, ge=0, le=1)  # P(a drawn training row is augmented) = n_aug / (n_aug + 1)
    synonyms: str | None = None  # file of `word syn1 syn2 ...` lines
    synonyms_from: str | None = None  # a word2vec run: its nearest neighbours are the synonyms
    neighbours: int = Field(5, ge=1)  # synonyms_from: nearest words kept per word
    min_similarity: float = Field(0.5, ge=-1, le=1)  # synonyms_from: cosine threshold
    stopwords: Literal["english", "none"] = "english"  # never replaced, never the source of an insertion
    extend_vocab: bool = True  # add the synonyms of training words to the vocabulary

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
    enabled: bool = True
    hflip: bool = False  # digits and text are not mirror-symmetric; turn on for natural images
    crop_padding: int = Field(1, ge=0)  # random crop of the zero-padded image (shift by up to ±p px)
    resized_crop_scale: float = Field(1.0, gt=0, le=1)  # random resized crop: min area fraction (1 = off)
    rotation: float = Field(10.0, ge=0, le=180)  # max degrees
    brightness: float = Field(0.0, ge=0)
    contrast: float = Field(0.0, ge=0, lt=1)
    erasing: float = Field(0.0, ge=0, le=1)  # probability per image
    erasing_scale: float = Field(0.25, gt=0, lt=1)  # max area fraction of the erased box
    mixup: float = Field(0.0, ge=0)  # Beta(α, α); 0 = off
    cutmix: float = Field(0.0, ge=0)  # Beta(α, α); 0 = off
    mix_prob: float = Field(1.0, ge=0, le=1)
    text: TextAugmentConfig = TextAugmentConfig()


class TransferConfig(_Section):
    init_from: str | None = None  # a run directory or a .safetensors/.pt state dict
    lr_factor: float = Field(0.1, gt=0)  # with init_from: LR × factor (fine-tuning default 1/10)
    freeze: str | None = None  # "backbone" or "up_to=<layer group>"
    unfreeze_at: int | None = Field(None, ge=1)  # epoch at which frozen groups start to train
    gradual: bool = False  # unfreeze one group per epoch from the top (ULMFiT)
    discriminative: float = Field(1.0, ge=1)  # group k below the head trains at lr / factor^k


class PeftConfig(_Section):
    """Parameter-efficient fine-tuning of the transfer.init_from base (`nnrecipe.training.peft`)."""
    method: Literal["none", "lora", "adapter", "prompt"] = "none"
    rank: int = Field(8, ge=1)  # lora: r
    alpha: float = Field(16.0, gt=0)  # lora: the update is scaled by alpha / rank
    targets: tuple[str, ...] = ()  # layer names (substrings) or globs; (): every Linear (+ Conv2d for lora) but the head
    adapter_hidden: int = Field(16, ge=1)  # adapter: bottleneck width m
    prompt_tokens: int = Field(8, ge=1)  # prompt: learned prefix vectors

    @field_validator("targets", mode="before")
    @classmethod
    def _split_targets(cls, v):
        return tuple(s.strip() for s in v.split(",") if s.strip()) if isinstance(v, str) else v


class AdversarialConfig(_Section):
    """Adversarial training (`nnrecipe.post.adversarial`); eps and step_size in raw input units."""
    method: Literal["none", "fgsm", "pgd"] = "none"
    eps: float = Field(1.0, gt=0)  # L∞ radius in raw input units (digits: pixel values 0–16)
    steps: int = Field(7, ge=1)  # pgd: attack steps per training batch
    step_size: float | None = Field(None, gt=0)  # pgd: None means 2.5·eps/steps (Madry et al. 2018)
    eval_steps: int = Field(10, ge=1)  # PGD steps of the robust accuracy reported after fit
    raw_range: tuple[float, float] | None = None  # valid raw input range; None: [0, 16] for digits, else unclamped


class CalibrationConfig(_Section):
    temperature: bool = True
    ece_bins: int = Field(15, ge=1)


class TextConfig(_Section):
    """Sequence data: the generated `seq:NAME` tasks and text CSVs (classification or parallel)."""
    task_size: int | None = Field(None, ge=10)  # seq:NAME tasks: training examples (None: the task's default)
    # text CSVs: tokenizer; auto: word when the texts are word-separated (median ≥ 3 words), else
    # char, and char for a .txt corpus (the value used is recorded in config.yaml)
    level: Literal["auto", "char", "word"] = "auto"
    text_column: str | None = None  # text classification CSV; None: the one free-text column (or "text")
    label_column: str | None = None  # None: data.target, else "label"
    source_column: str = "source"  # parallel CSV (seq2seq): used when both columns exist
    target_column: str = "target"
    min_freq: int = Field(1, ge=1)  # vocabulary: rarer tokens become <unk>
    max_vocab: int | None = Field(None, ge=5)  # vocabulary size cap, specials included
    max_len: int = Field(256, ge=1)  # longer inputs are truncated (tokens)
    bucketing: bool = True  # classify/seq2seq/tagging: similar-length batches, each cut to its longest (training/buckets)
    reverse_numbers: bool = False  # digits least-significant first inside the model; I/O stays as written
    block_size: int = Field(64, ge=2)  # language models: training window (tokens)
    tbptt: int | None = Field(None, ge=1)  # rnn language models: cut the gradient every k steps
    teacher_forcing: float = Field(1.0, ge=0, le=1)  # seq2seq: P(gold previous token) in training
    beam: int = Field(1, ge=1)  # seq2seq decoding: 1 = greedy
    length_penalty: float = Field(0.6, ge=0)  # beam search: GNMT α
    sample_temperature: float = Field(0.8, gt=0)  # language models: sampling τ for the sample
    sample_length: int = Field(200, ge=1)  # language models: characters/tokens sampled after fit


class TaggingConfig(_Section):
    """Sequence tagging CSVs (`nnrecipe.data.tagged_text`): one sentence per row."""
    tokens_column: str = "tokens"  # space-separated tokens
    tags_column: str = "tags"  # space-separated tags, one per token


class Word2VecConfig(_Section):
    """`model.name: word2vec` runs; names follow gensim's (`sg`, `window`, `negative`, `min_count`,
    `sample`, `ns_exponent`); the LR is `lr` (gensim's alpha), the vector size `dim`."""
    sg: Literal[0, 1] = 1  # 1: skip-gram, 0: CBOW (mean of the window's vectors)
    dim: int = Field(100, ge=1)  # vector size D
    window: int = Field(5, ge=1)  # max distance; each center uses b ~ U{1..window}
    negative: int = Field(5, ge=1)  # noise words per positive pair
    ns_exponent: float = 0.75  # noise distribution ∝ count^α
    min_count: int = Field(5, ge=1)  # rarer words are dropped
    max_vocab: int | None = Field(None, ge=1)  # keep only the most frequent words
    sample: float = Field(1e-3, ge=0)  # subsampling threshold t; 0 keeps every token
    lr: float | None = Field(None, gt=0)  # None: 0.025 skip-gram, 0.05 CBOW (word2vec.c)
    min_lr_factor: float = Field(1e-4, ge=0, le=1)  # the LR decays linearly to lr · factor
    batch_size: int = Field(1024, ge=1)  # positive pairs (sg) or windows (cbow) per SGD step
    threads: int | None = Field(1, ge=1)  # torch intra-op threads while training; None: torch's default
    analogies: str | None = None  # questions-words file scored after fit (w2v:synthetic: its own)


class GenerativeConfig(_Section):
    """`model.name: autoencoder | vae | gan` runs (`nnrecipe.generative`); pixels are scaled to [0, 1]."""
    arch: Literal["mlp", "conv"] = "mlp"  # encoder/decoder (AE, VAE) or D/G (GAN) family
    latent_dim: int = Field(16, ge=1)  # size of z
    hidden: tuple[int, ...] = (256, 128)  # mlp: encoder / discriminator widths; decoder / generator mirrored
    channels: tuple[int, ...] = (64, 128)  # conv: widths of the stride-2 stages; decoder / generator reversed
    beta: float = Field(1.0, ge=0)  # VAE: loss = reconstruction + β·KL
    recon_loss: Literal["bce", "mse"] = "bce"  # autoencoder training loss (the VAE is always Bernoulli)
    real_label: float = Field(0.9, ge=0, le=1)  # GAN: D's target for real images (one-sided smoothing)
    fake_label: float = Field(0.0, ge=0, le=1)  # GAN: D's target for generated images
    grid: int = Field(8, ge=1)  # sample grids are grid × grid images
    snapshots: int = Field(4, ge=0)  # GAN: fixed-noise grids saved at this many evenly spaced epochs
    embedding: Literal["pca", "tsne"] = "pca"  # plots/latent.png: 2-D projection of the test codes
    eval_samples: int = Field(1000, ge=10)  # generated images scored by the judge classifier
    judge: str | None = None  # classifier RUN_DIR for the scores; None: train one into RUN/judge; "none": skip
    judge_epochs: int = Field(15, ge=1)  # epochs of the judge trained when `judge` is None

    @field_validator("hidden", "channels")
    @classmethod
    def _positive_widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(h < 1 for h in v):
            raise ValueError("give at least one width, every width >= 1")
        return v


class CaptionConfig(_Section):
    """`model.name: captioner` runs (`nnrecipe.tasks.captioning`): the encoder's widths are model.channels /
    convs_per_stage (cnn) or model.widths / blocks (resnet), the decoder's model.embed_dim / rnn_hidden."""
    encoder: Literal["cnn", "resnet"] = "cnn"  # the conv stages whose feature grid is attended over
    cell: Literal["lstm", "gru"] = "lstm"  # decoder cell
    attention_dim: int = Field(64, ge=1)  # additive attention's hidden size
    gate: bool = True  # β_t = σ(f_β(h_{t−1})) scales the context (Xu et al. §4.2.1)
    attention_reg: float = Field(1.0, ge=0)  # λ of the doubly stochastic penalty λ Σ_i (1 − Σ_t α_ti)²
    teacher_forcing: float = Field(1.0, ge=0, le=1)  # P(gold previous word) in training
    beam: int = Field(3, ge=1)  # decoding: 1 = greedy
    length_penalty: float = Field(0.6, ge=0)  # beam search: GNMT α
    max_len: int = Field(20, ge=1)  # words per caption: longer ones are cut in training, decoding stops there
    min_freq: int = Field(1, ge=1)  # vocabulary: rarer words become <unk>
    max_vocab: int | None = Field(None, ge=5)  # vocabulary size cap, specials included
    task_size: int | None = Field(None, ge=10)  # cap:digits: training canvases (None: 2000)
    samples: int = Field(6, ge=0)  # test images drawn in the report with their caption and attention maps


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
