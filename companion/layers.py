r"""Layers as integrator steps, and networks as compositions of them.

A layer is :math:`n` steps of a one-step method :math:`\Psi^{h}_{F_\theta}` applied to a parametric
vector field; a network is :math:`\mathcal N = P\circ\Psi^{h_M}_{F_M}\circ\cdots\circ\Psi^{h_1}_{F_1}\circ L`
with a lifting :math:`L` and a projection :math:`P` where the width changes. With explicit Euler and
:class:`~companion.fields.MLPField` the layer is the ResNet layer :math:`x + hB\sigma(Ax+b)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._checks import check_choice, check_positive, check_positive_int, check_tensor, field_call_error
from ._checks import check_time as _check_time
from ._settings import FixedSettings
from .fields import ACTIVATIONS, GradientField, LowRankSpherePreservingField, MLPField, SpherePreservingField
from .geometric import (
    _cayley_step_unchecked,
    _exp_step_unchecked,
    _low_rank_cayley_step_unchecked,
    _low_rank_exp_step_unchecked,
    _rotation_step_unchecked,
)
from .integrators import (
    CAYLEY,
    EULER,
    ROTATION,
    ButcherTableau,
    GeometricMethod,
    _rk_steps_unchecked,
    get_method,
    get_tableau,
    require_method,
)

__all__ = [
    "StepSize",
    "FlowLayer",
    "FlowNetwork",
    "resnet",
    "mlp",
    "xavier_init_",
    "GradientLayer",
    "SpherePreservingLayer",
    "gradient_sphere_network",
]


class StepSize(FixedSettings):
    """Mixin for layers with a step size and fixed settings, shown in ``repr`` and kept by ``state_dict``.

    The step is a fixed Python float (exact in float64), or with ``learn_step=True`` a parameter ``raw_h``
    kept positive by ``abs``. It is given as a scalar by the package's one rule (a Python or NumPy number, or a
    tensor with one element, read as its value) and must be > 0: a layer integrates forward in time
    (:func:`~companion.integrators.rk_step` and :func:`~companion.integrators.integrate` take negative steps).
    Call :meth:`_init_step` after ``nn.Module.__init__``.

    The fixed settings are ``h``, ``learn_step`` and, where the layer has them, ``n_steps`` and ``method``
    (saved by name), plus ``time_dependent`` and ``t0`` for :class:`FlowLayer`. They are saved as the module's
    extra state, so ``load_state_dict`` restores them: a layer built with another ``h``, ``n_steps`` or
    ``method`` computes, after loading, what the saved layer computed. A restored method must keep every
    property the layer's own method keeps (a norm-exact layer accepts only norm-exact methods), and
    ``learn_step`` must agree (it decides whether ``raw_h`` is a parameter).

    The method passes one check wherever it is set: the constructor, ``layer.method = ...`` and
    ``load_state_dict`` all go through the layer's :meth:`_check_method`, so a layer runs the method it reports.
    """

    _OPTIONAL_SETTINGS = ("n_steps", "method", "time_dependent", "t0")

    def __setattr__(self, name: str, value: object) -> None:
        if name == "method":
            value = self._check_method(value)
        super().__setattr__(name, value)

    def _check_method(self, method: object) -> ButcherTableau | GeometricMethod:
        """The method object for ``method``, checked as the constructor checks it; layers with a method override it."""
        raise AttributeError(f"{type(self).__name__} has no integrator to choose: it has no method setting.")

    def _init_step(self, h: float, learn_step: bool) -> None:
        h = check_positive(h, "h")
        if not isinstance(learn_step, bool):
            raise TypeError(f"learn_step must be True or False, got {learn_step!r}.")
        self.raw_h = nn.Parameter(torch.tensor(h)) if learn_step else None
        self._h = h
        self.learn_step = learn_step

    @property
    def h(self) -> float | torch.Tensor:
        """The layer's total step: a float, or a positive scalar tensor when learned."""
        return self._h if self.raw_h is None else self.raw_h.abs()

    def _sub_step(self, x: torch.Tensor, n_steps: int) -> float | torch.Tensor:
        """The step of each of ``n_steps`` sub-steps, in the dtype of ``x`` when learned."""
        return self._h / n_steps if self.raw_h is None else (self.raw_h.abs() / n_steps).to(x.dtype)

    @property
    def _settings(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("h", "learn_step") + tuple(name for name in self._OPTIONAL_SETTINGS if name in self.__dict__)

    def settings(self) -> dict[str, object]:
        """The fixed settings by name, as plain Python values (the method by its name; ``h`` is ``None`` when learned)."""
        values: dict[str, object] = {"h": None if self.raw_h is not None else self._h, "learn_step": self.learn_step}
        for name in self._settings[2:]:
            value = getattr(self, name)
            values[name] = value.key if isinstance(value, (ButcherTableau, GeometricMethod)) else value
        return values

    def extra_repr(self) -> str:
        settings = self.settings()
        shown = []
        for name, value in settings.items():
            if name == "h":
                shown.append(
                    f"h={value!r}" if value is not None else f"h={float(self.raw_h.detach().abs()):.6g} (learned)"
                )
            elif name == "learn_step" or (name in ("time_dependent", "t0") and not settings.get("time_dependent")):
                continue
            else:
                shown.append(f"{name}={value!r}")
        return ", ".join(shown)

    def _configure(self, **settings) -> None:
        """Validate and set saved settings (called by ``load_state_dict``)."""
        if settings["learn_step"] != self.learn_step:
            raise ValueError(
                f"{type(self).__name__}: the state dict was saved with learn_step={settings['learn_step']}, this layer "
                f"has learn_step={self.learn_step}; build it with learn_step={settings['learn_step']} before loading."
            )
        if settings["h"] is not None:
            self._h = check_positive(settings["h"], "h")
        if "n_steps" in settings:
            self.n_steps = check_positive_int(settings["n_steps"], "n_steps")
        if "method" in settings:
            self.method = self._restored_method(settings["method"])
        if "time_dependent" in settings:
            if not isinstance(settings["time_dependent"], bool):
                raise TypeError(f"time_dependent must be True or False, got {settings['time_dependent']!r}.")
            hint = field_call_error(self.field, settings["time_dependent"])
            if hint is not None:  # the field of this layer cannot be called as the saved layer called its own
                raise hint
            self.time_dependent = settings["time_dependent"]
        if "t0" in settings:
            self.t0 = _check_time(settings["t0"], "t0")

    def _restored_method(self, key: str) -> ButcherTableau | GeometricMethod:
        if key == self.method.key:
            return self.method
        method = get_method(key, name="saved method")
        try:
            return self._check_method(method)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{type(self).__name__}: the state dict was saved with method {key!r}, which this layer cannot run "
                f"in place of {self.method.key!r}: {error}"
            ) from error


class FlowLayer(StepSize, nn.Module):
    r"""``n_steps`` Runge--Kutta steps of size ``h / n_steps`` of a vector field: :math:`x\mapsto(\Psi^{h/n}_F)^n(x)`.

    Parameters
    ----------
    field : callable
        The vector field :math:`F_\theta`, mapping ``(batch, dim)`` to ``(batch, dim)``: an ``nn.Module`` (its
        parameters become the layer's) or any callable, as for :func:`~companion.integrators.rk_step`.
    h : float
        Total step (time the layer integrates for), > 0.
    n_steps : int
        Number of sub-steps, >= 1.
    method : ButcherTableau or str
        The explicit Runge--Kutta method, as an object (``companion.RK4``) or its name (``"rk4"``); default
        explicit Euler, the ResNet layer.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.
    time_dependent : bool
        If true, the field is called as ``field(t, x)`` (the ``torchdiffeq`` convention), the layer
        integrating from ``t0`` to ``t0 + h``.
    t0 : float
        Start time of a time-dependent layer (only with ``time_dependent=True``; default 0).

    Raises
    ------
    TypeError, ValueError
        If ``field`` is not callable, ``h`` is not positive, ``n_steps`` not an int >= 1, ``method`` not an
        explicit Runge--Kutta method or ``t0`` given for an autonomous field; in ``forward``, if the field
        does not return the shape of its input.
    """

    def __init__(
        self,
        field: Callable[..., torch.Tensor],
        *,
        h: float = 1.0,
        n_steps: int = 1,
        method: ButcherTableau | str = EULER,
        learn_step: bool = False,
        time_dependent: bool = False,
        t0: float | None = None,
    ) -> None:
        super().__init__()
        if not callable(field):
            raise TypeError(
                f"field must be callable (an nn.Module such as companion.MLPField, or a function), got {type(field).__name__}."
            )
        self.field = field
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self.method = get_tableau(method, name="method")
        if not isinstance(time_dependent, bool):
            raise TypeError(f"time_dependent must be True or False, got {time_dependent!r}.")
        if t0 is not None and not time_dependent:
            raise ValueError("t0 is the start time of a field f(t, x); pass time_dependent=True for such a field.")
        hint = field_call_error(field, time_dependent)  # f(x) against f(t, x), from the signature: once, here
        if hint is not None:
            raise hint
        self.time_dependent = time_dependent
        self.t0 = _check_time(0.0 if t0 is None else t0, "t0")
        self._init_step(h, learn_step)

    def _check_method(self, method: object) -> ButcherTableau:
        return get_tableau(method, name="method")

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if not isinstance(self.field, nn.Module):
            text = f"field={getattr(self.field, '__name__', type(self.field).__name__)}, " + text
        return text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", min_ndim=1)
        t0 = self.t0 if self.time_dependent else None
        return _rk_steps_unchecked(self.field, x, self._sub_step(x, self.n_steps), self.method, self.n_steps, t0)


class FlowNetwork(nn.Module):
    r"""A composition :math:`P\circ f_M\circ\cdots\circ f_1\circ L` of layers of equal width.

    Parameters
    ----------
    layers : sequence of nn.Module
        The dynamic layers :math:`f_i`, each mapping ``(batch, width)`` to ``(batch, width)``.
    in_dim, width, out_dim : int
        Input, layer and output widths. The lifting :math:`L` and projection :math:`P` are linear
        maps, left out (identity) where the widths already agree.

    Raises
    ------
    TypeError, ValueError
        If ``layers`` is empty or holds something that is not an ``nn.Module``, or a width is bad.
    """

    def __init__(self, layers: Sequence[nn.Module], *, in_dim: int, width: int, out_dim: int) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("width", width), ("out_dim", out_dim)):
            check_positive_int(value, name)
        layers = list(layers)
        if not layers or not all(isinstance(layer, nn.Module) for layer in layers):
            raise TypeError("layers must be a non-empty sequence of nn.Module objects.")
        self.in_dim = in_dim
        self.lift = nn.Identity() if in_dim == width else nn.Linear(in_dim, width)
        self.layers = nn.Sequential(*layers)
        self.projection = nn.Identity() if out_dim == width else nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.in_dim)
        return self.projection(self.layers(self.lift(x)))


def resnet(
    in_dim: int,
    out_dim: int,
    *,
    width: int,
    depth: int,
    hidden: int | None = None,
    T: float = 1.0,
    method: ButcherTableau | str = EULER,
    activation: str = "tanh",
) -> FlowNetwork:
    r"""A ResNet as a discretised ODE: ``depth`` layers of one step :math:`h = T/\text{depth}` each.

    Each layer is :math:`x + h B_i\sigma(A_ix+b_i)` (with ``method=EULER``) or any other
    Runge--Kutta step of the same field.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output sizes.
    width : int
        State dimension of the ODE.
    depth : int
        Number of layers (time steps).
    hidden : int, optional
        Hidden width of each field (default ``width``).
    T : float
        Final time; the step is ``T / depth``.
    method : ButcherTableau or str
        The explicit Runge--Kutta method of every layer (object or name).
    activation : str
        The field's activation.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, a non-positive ``T`` or an unknown activation.
    """
    check_positive_int(depth, "depth")
    check_positive(T, "T")
    hidden = width if hidden is None else hidden
    layers = [
        FlowLayer(MLPField(width, hidden, activation=activation), h=T / depth, method=method) for _ in range(depth)
    ]
    return FlowNetwork(layers, in_dim=in_dim, width=width, out_dim=out_dim)


def mlp(in_dim: int, out_dim: int, *, width: int, depth: int, activation: str = "tanh") -> nn.Sequential:
    r"""A plain multilayer perceptron with ``depth`` hidden layers :math:`x\mapsto\sigma(Ax+b)` (no skips).

    Raises
    ------
    TypeError, ValueError
        On bad sizes or an unknown activation.
    """
    for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width), ("depth", depth)):
        check_positive_int(value, name)
    check_choice(activation, "activation", ACTIVATIONS)
    sigma = ACTIVATIONS[activation][0]
    modules: list[nn.Module] = []
    size = in_dim
    for _ in range(depth):
        modules += [nn.Linear(size, width), _Activation(sigma)]
        size = width
    modules.append(nn.Linear(size, out_dim))
    return nn.Sequential(*modules)


def xavier_init_(model: nn.Module, *, activation: str = "tanh") -> nn.Module:
    r"""Xavier (Glorot) initialisation, in place, of every ``nn.Linear`` in ``model``; returns ``model``.

    Each weight is drawn from :math:`U(-a, a)`, :math:`a = g\sqrt{6/(n_\text{in} + n_\text{out})}` for a layer
    with :math:`n_\text{in}` inputs and :math:`n_\text{out}` outputs and :math:`g` the gain of ``activation``
    (``torch.nn.init.calculate_gain``: 5/3 for tanh), and each bias is set to zero (X. Glorot, Y. Bengio,
    AISTATS 2010). Other parameters (e.g. the weights :math:`\alpha` of a
    :class:`~companion.fields.GradientField`) keep their values. It draws from PyTorch's global generator.

    Raises
    ------
    TypeError, ValueError
        If ``model`` is not an ``nn.Module`` or the activation is unknown.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}.")
    check_choice(activation, "activation", ACTIVATIONS)
    gain = nn.init.calculate_gain(activation)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


class _Activation(nn.Module):
    def __init__(self, sigma: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigma(x)


# -- the layers of the universal-approximation chapter (gradient and sphere-preserving flows) --


class GradientLayer(FlowLayer):
    r"""Explicit Euler steps of a gradient field: :math:`x\mapsto x \pm h\,\nabla V_\theta(x)`.

    .. math:: V_\theta(x) = \sum_j \alpha_j\,\gamma(a_j^\top x + b_j), \qquad
              \nabla V_\theta(x) = A^\top\big(\alpha\odot\sigma(Ax+b)\big), \qquad \gamma' = \sigma,

    the field of :class:`~companion.fields.GradientField`. With ``n_steps=1`` the layer is itself the
    gradient of the scalar :math:`\tfrac12\|x\|^2 \pm hV_\theta(x)`, so its Jacobian
    :math:`I \pm hA^\top\operatorname{diag}(\alpha\odot\sigma'(Ax+b))A` is symmetric for every parameter
    value and step size (with ``n_steps > 1`` each sub-step is).

    Parameters
    ----------
    dim : int
        State dimension (any ``dim >= 1``).
    hidden : int
        Number of ridge functions in :math:`V_\theta`.
    h : float
        Total step, > 0; split into ``n_steps`` equal Euler steps.
    sign : {1, -1}
        Ascent (:math:`+h\nabla V`) or descent (:math:`-h\nabla V`).
    activation : {"tanh", "sigmoid", "relu"}
        :math:`\sigma`; :math:`\gamma` is its antiderivative.
    n_steps : int
        Number of Euler sub-steps.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.

    Raises
    ------
    TypeError, ValueError
        On a bad ``dim``/``hidden``/``n_steps``, a non-positive ``h``, a sign other than 1 or -1 or an
        unknown activation; in ``forward``, if ``x`` is not a ``(batch, dim)`` floating tensor.

    References
    ----------
    E. Celledoni et al., *Dynamical systems' based neural networks*, SIAM J. Sci. Comput. 45(6) (2023).
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int = 16,
        h: float = 0.1,
        sign: int = 1,
        activation: str = "tanh",
        n_steps: int = 1,
        learn_step: bool = False,
    ) -> None:
        field = GradientField(dim, hidden, activation=activation, sign=sign)
        super().__init__(field, h=h, n_steps=n_steps, method=EULER, learn_step=learn_step)
        self.dim = dim

    def _check_method(self, method: object) -> ButcherTableau:
        method = get_tableau(method, name="method")
        if method is not EULER:
            raise ValueError(
                f"GradientLayer takes explicit Euler steps only (each step is then the gradient of a scalar, with a "
                f"symmetric Jacobian), got {method.key or method.name!r}; for another method use "
                "FlowLayer(companion.GradientField(...), method=...)."
            )
        return method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        return super().forward(x)


class SpherePreservingLayer(StepSize, nn.Module):
    r"""A norm-exact step of a sphere-preserving field :math:`\dot x = S_\theta(x)\,x`, :math:`S_\theta^\top = -S_\theta`.

    Each of the ``n_steps`` sub-steps freezes :math:`S = S_\theta(x_k)` and applies an orthogonal map:

    * ``method="cayley"``: :math:`x_{k+1} = (I - \tfrac\tau2 S)^{-1}(I + \tfrac\tau2 S)\,x_k`,
    * ``method="exp"``: :math:`x_{k+1} = \exp(\tau S)\,x_k`,
    * ``method="rotation"``: the exponential of the rank-two skew matrix that agrees with :math:`S` on
      :math:`x_k`, a rotation in the plane of :math:`x_k` and :math:`S x_k` in closed form
      (:func:`~companion.geometric.rotation_step`),

    with :math:`\tau = h/\text{n\_steps}`. All three maps are orthogonal because the matrices are skew, so
    :math:`\|x_{k+1}\| = \|x_k\|` to rounding for every parameter value and step size; explicit
    Euler would grow the norm (:math:`\|x + \tau Sx\|^2 = \|x\|^2 + \tau^2\|Sx\|^2`) and is refused.

    The family of :math:`S_\theta`: by default (``rank=1``) the low-rank
    :math:`S_\theta(x) = U(x)V(x)^\top - V(x)U(x)^\top` of
    :class:`~companion.fields.LowRankSpherePreservingField`, whose Cayley and exponential steps reduce to
    ``2 rank`` x ``2 rank`` problems (:func:`~companion.geometric.low_rank_cayley_step`), so the layer costs
    about as much as a ResNet layer of the same width; with ``rank=None`` every entry of :math:`S_\theta(x)`
    is learned (:class:`~companion.fields.SpherePreservingField`), at the cost of a ``dim`` x ``dim`` solve
    or exponential per sample.

    Parameters
    ----------
    dim : int
        State dimension, >= 2.
    hidden : int
        Width of the network producing :math:`S_\theta`.
    h : float
        Total step, > 0.
    activation : str
        Activation of that network.
    method : CAYLEY, EXP, ROTATION or their names "cayley", "exp", "rotation"
        The norm-exact step; any other method (e.g. ``"euler"``) raises ``ValueError``.
    n_steps : int
        Number of sub-steps.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.
    rank : int or None
        Rank of the factors :math:`U, V` (default 1), or ``None`` for the full family.

    Raises
    ------
    TypeError, ValueError
        If ``dim < 2``, ``h`` is not positive, ``method`` does not keep the norm, ``rank`` is not an int >= 1
        or ``None``, or an option is bad; in ``forward``, if ``x`` is not a ``(batch, dim)`` floating tensor.

    References
    ----------
    E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*, Springer (2006), Ch. IV.
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int = 16,
        h: float = 0.1,
        activation: str = "tanh",
        method: GeometricMethod | str = CAYLEY,
        n_steps: int = 1,
        learn_step: bool = False,
        rank: int | None = 1,
    ) -> None:
        super().__init__()
        self.method = require_method("norm", method)
        if rank is None:
            self.field = SpherePreservingField(dim, hidden, activation=activation)
        else:
            self.field = LowRankSpherePreservingField(dim, hidden, rank=rank, activation=activation)
        self.dim = dim
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self._init_step(h, learn_step)

    def _check_method(self, method: object) -> GeometricMethod:
        return require_method("norm", method)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        tau = self._sub_step(x, self.n_steps)
        low_rank = isinstance(self.field, LowRankSpherePreservingField)
        for _ in range(self.n_steps):
            if self.method.key == ROTATION.key:
                x = _rotation_step_unchecked(self.field(x), x, tau)
            elif low_rank:
                step = (
                    _low_rank_cayley_step_unchecked if self.method.key == CAYLEY.key else _low_rank_exp_step_unchecked
                )
                x = step(*self.field.factors(x), x, tau)
            else:
                step = _cayley_step_unchecked if self.method.key == CAYLEY.key else _exp_step_unchecked
                x = step(self.field.skew(x), x, tau)
        return x


def gradient_sphere_network(
    in_dim: int,
    out_dim: int,
    *,
    width: int,
    depth: int,
    hidden: int = 16,
    h: float = 0.1,
    activation: str = "tanh",
    method: GeometricMethod | str = CAYLEY,
    learn_step: bool = False,
    rank: int | None = 1,
) -> FlowNetwork:
    r"""Lift, then ``depth`` pairs (:class:`GradientLayer`, :class:`SpherePreservingLayer`), then project.

    .. math:: \mathcal N = P\circ\big(\Psi^h_{X_{S,\theta_M}}\circ\Psi^h_{\nabla V_{\theta_M}}\big)\circ\cdots
              \circ\big(\Psi^h_{X_{S,\theta_1}}\circ\Psi^h_{\nabla V_{\theta_1}}\big)\circ L,

    the network class of the universal-approximation theorem: each pair is one Lie--Trotter step of
    a learned field :math:`\nabla V_\theta + S_\theta(x)x` (its Presnov decomposition).

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output sizes; the linear lift :math:`L` and projection :math:`P` are left out where
        they equal ``width``.
    width : int
        State dimension of the flows, >= 2.
    depth : int
        Number of (gradient, sphere) pairs.
    hidden : int
        Hidden width of each field.
    h : float
        Step of every layer.
    activation : str
        Activation of the fields.
    method : CAYLEY, EXP, ROTATION or their names
        Norm-exact step of the sphere layers.
    learn_step : bool
        Learn each layer's step.
    rank : int or None
        Rank of the sphere layers' skew factors (default 1), or ``None`` for the full family
        (see :class:`SpherePreservingLayer`).

    Raises
    ------
    TypeError, ValueError
        On bad sizes, ``width < 2``, a non-positive ``h``, a bad ``rank`` or a method that does not keep the norm.
    """
    check_positive_int(depth, "depth")
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers.append(GradientLayer(width, hidden=hidden, h=h, activation=activation, learn_step=learn_step))
        layers.append(
            SpherePreservingLayer(
                width, hidden=hidden, h=h, activation=activation, method=method, learn_step=learn_step, rank=rank
            )
        )
    return FlowNetwork(layers, in_dim=in_dim, width=width, out_dim=out_dim)
