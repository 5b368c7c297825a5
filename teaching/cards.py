"""One short card per method: what it computes, its formula in one line, what it is good for, its known weakness.

Shown beside each tile on Explore, all together on the Methods page, and in the CLI's summary. Notation:
`F` the target class's logit, `x` the input, `x′` a baseline, `A^k` the k-th feature map of the chosen layer
(`Z` cells), `w^c_k` the final Linear's weight for class c, `⊙` elementwise product.
"""
from __future__ import annotations

CARD_KEYS = ("title", "what", "formula", "good_for", "weakness")

_CARDS: dict[str, dict[str, str]] = {
    "cam": dict(
        title="CAM",
        what="Weights the last convolutional feature maps by the final Linear layer's weights for the class.",
        formula="M = Σ_k w^c_k A^k",
        good_for="Exact for its architecture: the class logit is the spatial mean of M plus the bias.",
        weakness="Needs a global-average-pool → Linear head (no VGG, no hidden FC layer); coarse, layer-resolution maps.",
        reference="Zhou et al., 2016",
    ),
    "grad_cam": dict(
        title="Grad-CAM",
        what="Weights the feature maps by the spatial mean of the class gradient, then keeps the positive part.",
        formula="M = ReLU(Σ_k α_k A^k),  α_k = (1/Z) Σ_ij ∂F/∂A^k_ij",
        good_for="Any CNN, one forward and one backward; class-discriminative: it moves when you change the class.",
        weakness="Coarse (layer resolution); averaging the gradient can cancel evidence and blur several objects together.",
        reference="Selvaraju et al., 2017",
    ),
    "grad_cam_pp": dict(
        title="Grad-CAM++",
        what="Grad-CAM with per-location weights from higher-order terms, so each object instance gets its share.",
        formula="M = ReLU(Σ_k (Σ_ij a^k_ij ReLU(∂F/∂A^k_ij)) A^k),  a from 2nd/3rd derivatives of exp(F)",
        good_for="Several instances of a class, and fuller coverage of one object than Grad-CAM.",
        weakness="Its weights assume an exponential output; the derivation's approximations make it a heuristic.",
        reference="Chattopadhyay et al., 2018",
    ),
    "hires_cam": dict(
        title="HiResCAM",
        what="Multiplies each feature map by its gradient elementwise before summing, without spatial averaging.",
        formula="M = ReLU(Σ_k ∂F/∂A^k ⊙ A^k)",
        good_for="Faithful to locations the model used: for a GAP → Linear head it equals CAM.",
        weakness="Still at the layer's resolution; noisier than Grad-CAM where gradients fluctuate.",
        reference="Draelos & Carin, 2020",
    ),
    "layer_cam": dict(
        title="LayerCAM",
        what="Weights every location by its own positive gradient, so shallower layers give usable maps too.",
        formula="M = ReLU(Σ_k ReLU(∂F/∂A^k) ⊙ A^k)",
        good_for="Finer maps from earlier layers; combining layers for detail.",
        weakness="Dropping negative gradients hides counter-evidence; early layers are less class-specific.",
        reference="Jiang et al., 2021",
    ),
    "score_cam": dict(
        title="Score-CAM",
        what="Masks the input with each upsampled feature map and weights the map by the class score it keeps.",
        formula="M = ReLU(Σ_k s_k A^k),  s_k = class score of x ⊙ norm(up(A^k))",
        good_for="No gradients at all, so no gradient noise or saturation.",
        weakness="One forward per informative channel (490–941 of EfficientNet-Lite's 1280 on the samples; the app "
                 "keeps the 64 of highest mean activation, Pearson r ≥ 0.98 with all); masks create "
                 "out-of-distribution inputs.",
        reference="Wang et al., 2020",
    ),
    "saliency": dict(
        title="Saliency (gradient)",
        what="The gradient of the class logit with respect to each input pixel.",
        formula="A = ∂F/∂x",
        good_for="Cheapest pixel-level view: which pixels would change the score the most, locally.",
        weakness="Gradients saturate: a feature that already did its job can have zero gradient; visually noisy.",
        reference="Simonyan et al., 2014",
    ),
    "input_x_gradient": dict(
        title="Input × Gradient",
        what="The gradient times the input: a first-order estimate of each pixel's contribution.",
        formula="A = x ⊙ ∂F/∂x",
        good_for="Sharper than the gradient alone; exact for linear models (with a zero baseline).",
        weakness="Inherits saturation (fails Sensitivity: f(x) = 1 − ReLU(1 − x) at x = 2 gets 0); depends on input scale.",
        reference="Shrikumar et al., 2016",
    ),
    "guided_backprop": dict(
        title="Guided Backpropagation",
        what="Backpropagates only positive gradients through positive activations at every ReLU.",
        formula="R_in = 1[a > 0] ⊙ ReLU(R_out) at every ReLU, A = R at the input",
        good_for="Crisp, high-resolution pictures of edges and textures.",
        weakness="Not class-discriminative, and nearly unchanged when the model's weights are randomised: it "
                 "reconstructs the image more than it explains the model.",
        reference="Springenberg et al., 2015",
    ),
    "deconvnet": dict(
        title="Deconvnet",
        what="Backpropagates through each ReLU by keeping positive gradients, whatever the forward activation was.",
        formula="R_in = ReLU(R_out) at every ReLU, A = R at the input",
        good_for="Historical view of which input patterns drive high-level units.",
        weakness="Ignores the forward pass at ReLUs, so it is even less tied to the class and the input.",
        reference="Zeiler & Fergus, 2014",
    ),
    "guided_grad_cam": dict(
        title="Guided Grad-CAM",
        what="Guided backpropagation multiplied by the upsampled Grad-CAM map.",
        formula="A = GuidedBackprop ⊙ up(Grad-CAM)",
        good_for="High-resolution detail restricted to the class's region.",
        weakness="Inherits guided backprop's insensitivity to the model's weights; sharpness can be mistaken for faithfulness.",
        reference="Selvaraju et al., 2017",
    ),
    "integrated_gradients": dict(
        title="Integrated Gradients",
        what="Averages gradients along the straight path from a baseline to the input, times the difference.",
        formula="A = (x − x′) ⊙ ∫₀¹ ∂F(x′ + α(x − x′))/∂x dα",
        good_for="Axioms: completeness (Σ A = F(x) − F(x′)), sensitivity, implementation invariance; survives saturation.",
        weakness="Depends on the baseline (black hides black pixels); needs enough steps to converge (check the error).",
        reference="Sundararajan et al., 2017",
    ),
    "expected_gradients": dict(
        title="Expected Gradients (GradientSHAP)",
        what="Integrated Gradients averaged over baselines drawn from a distribution, with a random α per sample.",
        formula="A = E_{x′∼D, α∼U(0,1)} [(x − x′) ⊙ ∂F(x′ + α(x − x′))/∂x]",
        good_for="No single baseline to choose; completeness holds in expectation, Σ A ≈ F(x) − E[F(x′)].",
        weakness="Stochastic: needs many samples and a seed to be repeatable; the result depends on the distribution D.",
        reference="Erion et al., 2021; Lundberg & Lee, 2017",
    ),
    "deeplift": dict(
        title="DeepLIFT (Rescale)",
        what="Propagates differences from a reference: each nonlinearity passes Δout / Δin instead of its gradient.",
        formula="m = (f(x) − f(x′)) / (x − x′) at every nonlinearity, A = (x − x′) ⊙ m chained back",
        good_for="One backward pass, yet complete: Σ A = F(x) − F(x′); no saturation at the endpoints.",
        weakness="A rule applied layer by layer: two nets computing the same function can get different "
                 "attributions (it breaks implementation invariance); depends on the reference.",
        reference="Shrikumar et al., 2017",
    ),
    # SmoothGrad is an option of the gradient and path methods (smooth=), not a method of its own.
    "smoothgrad": dict(
        title="SmoothGrad (option)",
        what="Averages a method's map over copies of the input with Gaussian noise added.",
        formula="A = (1/n) Σ_i Â(x + ε_i),  ε_i ∼ N(0, σ²)",
        good_for="Less visual noise in gradient maps; SmoothGrad² squares each map, VarGrad takes their variance.",
        weakness="n times the cost; σ is one more knob; denoising can make a map look better than the model is.",
        reference="Smilkov et al., 2017; Adebayo et al., 2018 (VarGrad)",
    ),
    "xgrad_cam": dict(
        title="XGrad-CAM",
        what="Weights each feature map by its gradient averaged with the map's own activations as weights.",
        formula="M = ReLU(Σ_k α_k A^k),  α_k = Σ_ij (A^k_ij / Σ_ab A^k_ab) ∂F/∂A^k_ij",
        good_for="Derived from two axioms (sensitivity, conservation); as cheap as Grad-CAM.",
        weakness="Dividing by Σ A makes weak, sparse channels count as much as strong ones; layer resolution.",
        reference="Fu et al., 2020",
    ),
    "eigen_cam": dict(
        title="Eigen-CAM",
        what="Projects the centred feature maps on their first principal component: no class, no gradient.",
        formula="M = ReLU((A − mean A) v₁),  v₁ = first right-singular vector of the (hw × K) features",
        good_for="One forward; shows what dominates the features, robust to gradient noise.",
        weakness="Not class-discriminative (the same map for every class); the SVD's sign is arbitrary, so "
                 "the map can come out inverted.",
        reference="Muhammad & Yeasin, 2020",
    ),
    "ablation_cam": dict(
        title="Ablation-CAM",
        what="Switches each feature map off in turn and weights it by how much the class logit drops.",
        formula="M = ReLU(Σ_k w_k A^k),  w_k = (F − F with A^k = 0) / F",
        good_for="No gradients: unaffected by saturation; weights are measured effects of the features.",
        weakness="One forward per channel (slow); dividing by F makes weights explode when the logit is near 0.",
        reference="Desai & Ramaswamy, 2020",
    ),
    "guided_ig": dict(
        title="Guided Integrated Gradients",
        what="Integrated Gradients on an adaptive path: at each step the features with the smallest gradient "
             "move towards the input first.",
        formula="A = Σ_steps Δx ⊙ ∂F/∂x along the guided path from x′ to x",
        good_for="Less noise than IG where the straight path crosses saturated or noisy regions; still complete.",
        weakness="Sequential (one gradient per step, no batching); depends on the baseline, max_dist and fraction.",
        reference="Kapishnikov et al., 2021",
    ),
    "blur_ig": dict(
        title="Blur IG",
        what="Integrated Gradients along a path of ever more blurred copies of the input, with no baseline image.",
        formula="A = −Σ_i Δσ ∂B_σ(x)/∂σ ⊙ ∂F/∂x (B_σ(x)),  B_σ = Gaussian blur",
        good_for="No baseline to choose: removing information by blurring stays closer to natural images.",
        weakness="Completeness only up to the most blurred image; the finite difference in σ amplifies rounding.",
        reference="Xu et al., 2020",
    ),
    "xrai": dict(
        title="XRAI",
        what="Ranks image regions (Felzenszwalb segments at several scales) by the attribution density they add.",
        formula="grow R by the segment s maximising mean(a over s ∖ R); M = that mean on the pixels s adds",
        good_for="Region-level maps that are easy to read; a region's rank says what to look at first.",
        weakness="Only as good as its base attribution (IG by default) and the segmentation's edges.",
        reference="Kapishnikov et al., 2019",
    ),
    "lrp_epsilon_plus_flat": dict(
        title="LRP ε-+-flat",
        what="Redistributes the class logit backwards layer by layer, each layer by its own rule: the first layer "
             "spreads relevance evenly over its receptive field (Flat), convolutions pass it along positive "
             "contributions only (z⁺), fully connected layers in proportion to each input's contribution (ε); "
             "activations pass it unchanged, average pooling and residual sums split it by contribution, "
             "BatchNorm is first merged into the convolution before it.",
        formula="R_i = Σ_j x_i w_ij⁺ / (Σ_i' x_i' w_i'j⁺ + ε) · R_j  (z⁺ rule, convolutions)",
        good_for="One forward and one modified backward; sharp maps that follow object structure, and (without "
                 "biases) conservation: the relevances add up to the logit.",
        weakness="The map depends on the chosen rules per layer, not only on the model; biases absorb relevance "
                 "(on EfficientNet-Lite most of it), and Flat blurs the first layer by design.",
        reference="Bach et al., 2015; Montavon et al., 2019; Zennit's EpsilonPlusFlat composite",
    ),
    "lrp_epsilon_gamma_box": dict(
        title="LRP ε-γ-box",
        what="LRP with the first convolution bounded by the pixel range (zβ / ZBox: contributions measured against "
             "the darkest and brightest possible image), the other convolutions favouring positive evidence by γ "
             "(W + γW⁺), fully connected layers by ε; activations, pooling, residual sums and BatchNorm as in ε-+-flat.",
        formula="R_i = Σ_j x_i (w_ij + γ w_ij⁺) / Σ_i' x_i' (w_i'j + γ w_i'j⁺) · R_j  (γ rule, γ = 0.25)",
        good_for="Maps at pixel resolution that keep negative evidence; the most common choice for image CNNs.",
        weakness="γ, ε and the first layer's bounds are knobs; like every LRP composite it is a modified "
                 "backward, so it can pass model-randomisation checks less clearly than gradients.",
        reference="Montavon et al., 2017 (zβ), 2019 (γ); Zennit's EpsilonGammaBox composite",
    ),
    "occlusion": dict(
        title="Occlusion",
        what="Slides a window of the baseline over the image and records how much the class logit drops; each "
             "pixel gets the mean drop of the windows that cover it.",
        formula="A(p) = mean over windows W ∋ p of  F(x) − F(x with W set to x′)",
        good_for="Model-agnostic and easy to read: a large value means hiding that area lowers the score.",
        weakness="One forward per window (slow); the window size sets the resolution, and an occluder the model "
                 "never saw in training can itself change the prediction.",
        reference="Zeiler & Fergus, 2014; Captum's Occlusion",
    ),
    "rise": dict(
        title="RISE",
        what="Scores the image under many random smooth masks and averages the masks, each weighted by the "
             "class probability it left (masked pixels are 0 in the normalised input).",
        formula="S = Σ_i P(c | x ⊙ M_i) · M_i / (N · p)",
        good_for="Any black-box model; smooth, object-sized maps; cost set by the number of masks.",
        weakness="Noisy with few masks and slow with many; the result depends on the seed, cell count and p.",
        reference="Petsiuk et al., 2018",
    ),
    "kernel_shap": dict(
        title="Kernel SHAP",
        what="Shapley values of superpixels: the logit is measured with random coalitions of segments kept (the "
             "rest set to the baseline) and a weighted regression shares F(x) − F(x′) among the segments.",
        formula="min Σ_z π(z)(F(z) − F(∅) − z·φ)²,  Σ φ = F(x) − F(x′),  π = Shapley kernel",
        good_for="A fair share per region with efficiency: the regions' values add up to the change of the logit.",
        weakness="Many forwards; only as fine as the segmentation; sampling noise when coalitions are not "
                 "enumerated; absent regions take baseline values the model may never have seen.",
        reference="Lundberg & Lee, 2017; superpixels: Achanta et al., 2012 (SLIC)",
    ),
}


def card(method_id: str) -> dict[str, str]:
    """The card of a method id of the contract (a fresh dict: callers may edit it)."""
    if method_id not in _CARDS:
        raise KeyError(f"No card for method '{method_id}'. Cards exist for: {', '.join(_CARDS)}")
    return dict(_CARDS[method_id])


def card_ids() -> list[str]:
    return list(_CARDS)


def card_markdown(method_id: str) -> str:
    """The card as a few lines of Markdown (the formula as code, so its symbols render verbatim)."""
    c = card(method_id)
    return (f"**{c['title']}** — {c['what']}  \n`{c['formula']}`  \n"
            f"**Good for:** {c['good_for']}  \n**Weakness:** {c['weakness']}")
