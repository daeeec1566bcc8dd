"""Model cards of ganzoo checkpoints, rendered from ``cards/model_card.md``.

The YAML front matter is a ``huggingface_hub.ModelCardData`` (never hand-built YAML):
``library_name: ganzoo``, ``pipeline_tag: unconditional-image-generation``, ``license``,
``tags`` (gan, the architecture, ``class-conditional`` where it is, the recipes), ``datasets``,
``base_model`` (the Hub repos of the ancestors) and ``model-index`` with the recorded metrics.
The body says what the checkpoint is, how to load it, shows the samples grid, its lineage, and
the license and citation of every ancestor.
"""

from __future__ import annotations

from ganzoo.registry import Entry, find_entry, is_repo_id, load_registry

PIPELINE_TAG = "unconditional-image-generation"  # the Hub's pipeline tag for every ganzoo model
ROLE_OF_FILE = {"generator.safetensors": "G_ema (EMA generator)", "generator_raw.safetensors": "G (raw generator)",
                "discriminator.safetensors": "D (discriminator)",
                "training_state.safetensors": "optimizer and training state"}  # fmt: skip


def _ancestor_entries(config: dict, entry: Entry | None) -> list[Entry]:
    """Registry entries among a checkpoint's ancestors (its source and every lineage parent)."""
    names = []
    if entry is not None:
        names.append(entry.name)
    source = config.get("source") or {}
    if isinstance(source, dict) and isinstance(source.get("registry"), str):
        names.append(source["registry"])
    names += [label for label, _ in _merged_sources(config)]
    for step in config.get("lineage") or []:
        if isinstance(step, dict):
            for key in ("registry", "name", "parent", "repo"):
                if isinstance(step.get(key), str):
                    names.append(step[key])
        elif isinstance(step, str):
            names.append(step)
    found: list[Entry] = []
    for name in names:
        candidate = find_entry(name)
        if candidate is None and is_repo_id(name):
            candidate = next((e for e in load_registry().entries.values() if e.hub.repo == name), None)
        if candidate is not None and candidate not in found:
            found.append(candidate)
    return found


def _merge_step(config: dict) -> dict | None:
    """The lineage step of ``ganzoo merge`` when the checkpoint is a merge (its last step)."""
    lineage = config.get("lineage") or []
    step = lineage[-1] if lineage else None
    return step if isinstance(step, dict) and step.get("operation") == "merge" else None


def _merged_sources(config: dict) -> list[tuple[str, str]]:
    """``(source label, class name)`` of every model a merged checkpoint was made from."""
    step = _merge_step(config)
    if step is None or not isinstance(step.get("sources"), list):
        return []
    labels = [str(label) for label in step["sources"]]
    classes = step.get("class_names") if isinstance(step.get("class_names"), list) else None
    classes = [str(c) for c in classes] if classes and len(classes) == len(labels) else labels
    return list(zip(labels, classes))


_MERGE_METHODS = {"cocktail": "GAN Cocktail", "scratch": "scratch", "transfer": "TransferGAN",
                  "ewc": "EWC", "freezed": "FreezeD"}  # fmt: skip


def _merge_title(config: dict) -> str:
    classes = [cls for _, cls in _merged_sources(config)]
    return f"{' + '.join(classes)}: a {len(classes)}-class GAN merged by ganzoo"


def _merge_lines(step: dict, merged: list[tuple[str, str]]) -> list[str]:
    """The merge step of a lineage in words: what was merged, how, at what budget."""
    method = str(step.get("method") or "cocktail")
    classes = ", ".join(f"`{cls}`" for _, cls in merged)
    how = _MERGE_METHODS.get(method, method)
    every = "both" if len(merged) == 2 else f"all {len(merged)}"
    root = step.get("root")
    root_class = next((cls for label, cls in merged if label == root), root)
    if method == "cocktail":
        return [f"merged into one conditional GAN with {len(merged)} classes ({classes}) by GAN Cocktail "
                f"(Avrahami, Lischinski & Fried, ECCV 2022; `ganzoo merge`): the root `{root_class}` rooted "
                f"on samples of every other source for {step.get('root_kimg'):g} kimg each, the rooted "
                f"models' weights averaged, then {step.get('merge_kimg'):g} kimg of training on labeled "
                f"samples of {every} sources"]  # fmt: skip
    budget = sum(float(s.get("kimg") or 0) for s in step.get("stages") or [] if isinstance(s, dict))
    start = f"the root `{root_class}`" + ("'s architecture at random init" if method == "scratch" else "")
    return [f"merged into one conditional GAN with {len(merged)} classes ({classes}) by the {how} baseline "
            f"(`ganzoo merge --method {method}`): {budget:g} kimg on labeled samples of {every} sources, "
            f"starting from {start}"]  # fmt: skip


def _source_line(label: str) -> str:
    """A source of a merge: its registry entry where it is one, else how it was given."""
    found = find_entry(label)
    if found is None and is_repo_id(label):
        found = next((e for e in load_registry().entries.values() if e.hub.repo == label), None)
    if found is None:
        return f"`{label}`"
    return f"ganzoo registry entry `{found.name}`: {found.title}"


def _lineage_lines(config: dict, entry: Entry | None, repo_id: str | None) -> list[str]:
    lines = []
    source = config.get("source") or {}
    merge_step = _merge_step(config)
    merged = _merged_sources(config)
    if merge_step is not None and merged and entry is None:
        # A merge: its sources first (class k is source k), then the root's own history.
        lines += [f"class `{cls}`: {_source_line(label)}" for label, cls in merged]
        root = next((cls for label, cls in merged if label == merge_step.get("root")), merge_step.get("root"))
        for step in (config.get("lineage") or [])[:-1]:
            lines += [f"root `{root}`: {line}" for line in _lineage_lines({"lineage": [step]}, None, None)[:-1]]
        lines += _merge_lines(merge_step, merged)
        lines.append(f"this checkpoint{f': `{repo_id}`' if repo_id else ''}")
        return lines
    if entry is not None:
        if entry.artifacts:
            artifact = entry.artifacts[0]
            lines.append(f"upstream release: {artifact.url} ({artifact.format}), converted safely by ganzoo")
        lines.append(f"ganzoo registry entry `{entry.name}`: {entry.title}")
    elif isinstance(source, dict) and source:
        what = source.get("registry") or source.get("file") or source.get("repo") or "unknown source"
        detail = ", ".join(f"{k} {source[k]}" for k in ("format", "url", "sha256") if source.get(k))
        lines.append(f"source: {what}" + (f" ({detail})" if detail else ""))
    for step in config.get("lineage") or []:
        if isinstance(step, dict):
            parent = step.get("registry") or step.get("repo") or step.get("name") or step.get("parent") or "a parent checkpoint"
            recipe = step.get("recipe")
            if step.get("operation") and not recipe:
                # A step on the weights themselves (e.g. AdaFM folded at push), not a training run.
                lines.append(f"`{step['operation']}`: " + "; ".join(str(n) for n in step.get("notes") or []))
                continue
            lines.append(f"{parent}" + (f" -> recipe `{recipe}`" if recipe else ""))
        else:
            lines.append(str(step))
    if config.get("training"):
        training = config["training"]
        recipe = training.get("recipe") if isinstance(training, dict) else None
        lines.append("trained with ganzoo" + (f" (recipe `{recipe}`)" if recipe else ""))
    lines.append(f"this checkpoint{f': `{repo_id}`' if repo_id else ''}")
    return lines


def _recipes(config: dict) -> list[str]:
    """The recipes a checkpoint was trained or merged with (its training and lineage steps), as
    tags: lowercase, dashes for anything else."""
    found = []
    training = config.get("training")
    if isinstance(training, dict) and isinstance(training.get("recipe"), str):
        found.append(training["recipe"])
    for step in config.get("lineage") or []:
        if isinstance(step, dict):
            if isinstance(step.get("recipe"), str):
                found.append(step["recipe"])
            if step.get("operation") == "merge" and isinstance(step.get("method"), str):
                found.append(step["method"])
    return [slug(name) for name in dict.fromkeys(found) if name.strip()]


def _metrics(config: dict, entry: Entry | None) -> list[dict]:
    """Metrics for the card: those recorded in config.json, else the registry's reported ones."""
    rows = []
    recorded = config.get("metrics")
    if isinstance(recorded, dict):
        for name, value in sorted(recorded.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"name": name, "value": float(value), "dataset": "", "source": "ganzoo (config.json)"})
            elif isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
                rows.append({"name": name, "value": float(value["value"]), "dataset": str(value.get("dataset", "")),
                             "source": str(value.get("source", "ganzoo (config.json)"))})  # fmt: skip
    elif isinstance(recorded, list):
        for item in recorded:
            if isinstance(item, dict) and isinstance(item.get("value"), (int, float)) and item.get("name"):
                rows.append({"name": str(item["name"]), "value": float(item["value"]),
                             "dataset": str(item.get("dataset", "")), "source": str(item.get("source", "ganzoo"))})  # fmt: skip
    if not rows and entry is not None:
        rows = [{"name": m.name, "value": m.value, "dataset": m.dataset, "source": m.source, "source_url": entry.paper.url}
                for m in entry.metrics]
    return rows


def render_card(config: dict, repo_id: str | None = None, entry: Entry | None = None,
                samples_file: str | None = None, filter_diversity: dict | None = None,
                name: str | None = None):  # fmt: skip
    """Renders the model card of a checkpoint from ``cards/model_card.md``.

    The YAML front matter is a ``huggingface_hub.ModelCardData``: ``library_name: ganzoo``,
    ``pipeline_tag: unconditional-image-generation``, ``license`` (+ ``license_name``/
    ``license_link``), ``tags`` (``ganzoo``, ``gan``, the architecture, ``class-conditional`` or
    the pipeline tag, the recipes of its training and lineage, its ancestors' tags),
    ``datasets``, ``base_model`` (the Hub repos of the ancestors) and ``model-index`` with the
    recorded metrics.

    Args:
        config: the checkpoint's ``config.json`` content.
        repo_id: the Hub repo the card is for (used in the usage snippet).
        entry: the registry entry, when the checkpoint is one (else found from ``source``).
        samples_file: file name of the samples grid uploaded beside the card.
        filter_diversity: ``{"G": float, "D": float or None}``, the mean pairwise filter cosine
            similarity of each network (:func:`ganzoo.analysis.filter_report`), shown in a
            "Filter diversity" section when given.
        name: without ``repo_id`` and ``entry``: how to load the checkpoint (its directory as
            the user gave it), shown in the usage snippet.

    Returns:
        A ``huggingface_hub.ModelCard``.
    """
    # Lazy: `ganzoo list` and `info` import this module (through the Hub layer) without huggingface_hub.
    from huggingface_hub import ModelCard

    from ganzoo.resources import card_files

    if entry is None:
        entry = _source_entry(config)
    ancestors = _ancestor_entries(config, entry)
    # The neutral metadata block (config format 2); format 1 and entry placeholders: the kwargs.
    generator = config.get("generator") or {}
    metadata = config.get("metadata") or {}
    c_dim = metadata.get("num_classes", generator.get("c_dim", entry.c_dim if entry else None))
    license_fields = _license_fields(config, entry)
    metric_rows = _metrics(config, entry)
    name = repo_id.split("/")[-1] if repo_id else (entry.name if entry else (name or "ganzoo-checkpoint"))
    merged = _merged_sources(config)
    template = card_files().joinpath("model_card.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        _card_data(config, entry, ancestors, c_dim, name, metric_rows, license_fields),
        template_str=template,
        title=entry.title if entry else (_merge_title(config) if merged and not repo_id else name),
        description=_description(config, entry, merged),
        file_rows=[{"file": f, "role": ROLE_OF_FILE.get(f, "weights")} for f in sorted(config.get("files") or {})],
        resolution=metadata.get("resolution", generator.get("img_resolution", entry.resolution if entry else None)),
        c_dim=c_dim,
        load_name=repo_id or (entry.name if entry else name),
        pullable=bool(repo_id or entry),
        example_class=(_example_class(config, c_dim) if c_dim else None),
        samples_file=samples_file,
        metric_rows=metric_rows,
        lineage_lines=_lineage_lines(config, entry, repo_id),
        notes=entry.notes if entry else "",
        ancestors=_ancestor_rows(ancestors, name, license_fields),
        architecture=config["architecture"],
        weights_sentence=_weights_sentence(config["architecture"]),
        truncation=bool(metadata.get("truncation", True)),
        filter_diversity=filter_diversity,
    )


def _source_entry(config: dict) -> Entry | None:
    """The registry entry a checkpoint is, unchanged: its ``source``'s, when it has no lineage."""
    source = config.get("source") or {}
    if isinstance(source, dict) and isinstance(source.get("registry"), str) and not config.get("lineage"):
        return find_entry(source["registry"])
    return None


def _card_data(config: dict, entry: Entry | None, ancestors: list[Entry], c_dim: int | None, name: str,
               metric_rows: list[dict], license_fields: tuple[str, str | None, str | None]):  # fmt: skip
    """The card's YAML front matter, a ``huggingface_hub.ModelCardData``."""
    from huggingface_hub import EvalResult, ModelCardData  # lazy: see render_card

    # The Hub's pipeline for GANs is unconditional-image-generation (it has none for class labels
    # as input); class-conditional models say so in their tags.
    task = PIPELINE_TAG
    tags = ["ganzoo", "gan", config["architecture"], "class-conditional" if c_dim else task]
    tags += _recipes(config)
    for ancestor in ancestors:
        tags += list(ancestor.tags)
    # Hub dataset ids where known; else a slug of the name (the field holds ids, not prose).
    dataset_ids = [ancestor.dataset.hub_id or slug(ancestor.dataset.name) for ancestor in ancestors]
    base_models = [a.hub.repo for a in ancestors if entry is None or a.name != entry.name]
    for step in config.get("lineage") or []:
        if isinstance(step, dict) and isinstance(step.get("repo"), str) and step["repo"] not in base_models:
            base_models.append(step["repo"])
    eval_results = [
        EvalResult(task_type=task, dataset_type=slug(m["dataset"] or (entry.dataset.name if entry else "unknown")),
                   dataset_name=m["dataset"] or (entry.dataset.name if entry else "unknown"),
                   metric_type=m["name"], metric_value=m["value"],
                   source_name=m["source"] if m.get("source_url") else None, source_url=m.get("source_url"))  # fmt: skip
        for m in metric_rows
    ]
    license_id, license_name, license_link = license_fields
    return ModelCardData(
        library_name="ganzoo",
        license=license_id,
        license_name=license_name,
        license_link=license_link,
        tags=list(dict.fromkeys(tags)),
        datasets=list(dict.fromkeys(dataset_ids)) or None,
        base_model=(base_models[0] if len(base_models) == 1 else base_models) or None,
        pipeline_tag=task,
        model_name=name if eval_results else None,  # only meaningful as the model-index name
        eval_results=eval_results or None,
    )


def _description(config: dict, entry: Entry | None, merged: list[tuple[str, str]]) -> str:
    """The card's first paragraph: what the checkpoint is."""
    if entry:
        return (f"{entry.title}, converted to the ganzoo format from the release of "
                f"*{entry.paper.title}* ({entry.paper.venue or entry.paper.year}). "
                f"Trained on {entry.dataset.name}"
                f"{f' ({entry.dataset.size:,} images)' if entry.dataset.size else ''}.")  # fmt: skip
    if merged:
        return (f"A class-conditional GAN made by `ganzoo merge` from {len(merged)} pretrained GANs, one class "
                f"per source ({', '.join(f'`{cls}`' for _, cls in merged)}), without their training data; "
                f"the lineage below says how.")  # fmt: skip
    return f"A GAN checkpoint in the ganzoo format ({config['architecture']})."


def _ancestor_rows(ancestors: list[Entry], name: str,
                   license_fields: tuple[str, str | None, str | None]) -> list[dict]:  # fmt: skip
    """The license and citation of every ancestor (of the checkpoint itself when it has none)."""
    rows = [
        {"name": a.name, "license": a.license_name if a.license == "other" else a.license, "license_url": a.license_url,
         "paper": a.paper.title, "paper_url": a.paper.url, "bibtex": a.paper.bibtex.strip()}
        for a in ancestors
    ]  # fmt: skip
    seen_bibtex: set[str] = set()
    for row in rows:  # one citation per paper (merged sources often share one)
        if row["bibtex"] in seen_bibtex:
            row["bibtex"] = ""
        seen_bibtex.add(row["bibtex"])
    if not rows:
        license_id, license_name, license_link = license_fields
        rows = [{"name": name, "license": license_name or license_id, "license_url": license_link or "",
                 "paper": "", "paper_url": "", "bibtex": ""}]  # fmt: skip
    return rows


def _weights_sentence(name: str) -> str:
    """What the card says of the weights' names, from what the family declares."""
    from ganzoo.architectures import Architecture, get_architecture
    from ganzoo.errors import GanzooError

    try:
        family = get_architecture(name)
    except GanzooError:
        return f"Loading them needs ganzoo with the `{name}` architecture installed."
    if type(family).for_upload is not Architecture.for_upload:
        return ("It holds tensors beyond its upstream networks' (e.g. AdaFM's), so it loads strictly with ganzoo "
                "only; `ganzoo export` folds them into plain weights that load into the official networks.")
    if family.upstream_names:
        return (f"Tensor names and constructor arguments are those of {family.upstream_names}, so the weights "
                "also load into the official networks with `load_state_dict(strict=True)`.")
    return f"Tensor names are those of ganzoo's `{name}` networks."


def _example_class(config: dict, c_dim: int) -> tuple[str, str]:
    """A class for the usage snippet of a conditional model: (Python literal, CLI argument)."""
    names = config.get("class_names")
    if isinstance(names, list) and len(names) == c_dim and names:
        return f'"{names[0]}"', str(names[0])
    return "0", "0"


def slug(text: str) -> str:
    """Lowercase letters, digits and dashes (for dataset types and license names)."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "unknown"


# License ids the Hub accepts as they are; anything else goes to license: other + license_name.
_HUB_LICENSES = {"apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc0-1.0",
                 "bsd-3-clause", "openrail", "creativeml-openrail-m", "gpl-3.0", "unknown"}  # fmt: skip


def _license_fields(config: dict, entry: Entry | None) -> tuple[str, str | None, str | None]:
    if entry is not None:
        if entry.license == "other":
            return "other", entry.license_name, entry.license_url or None
        return entry.license, None, entry.license_url or None
    license_text = str(config.get("license") or "unknown").strip().lower()
    if license_text in _HUB_LICENSES:
        return license_text, None, None
    return "other", slug(license_text), None


def entry_card(entry: Entry, samples_file: str | None = None):
    """The model card of a registry entry's Hub repo (before its weights are converted)."""
    config = {"architecture": entry.architecture, "generator": {"img_resolution": entry.resolution,
              **({"c_dim": entry.c_dim} if entry.c_dim is not None else {})},
              "source": {"registry": entry.name}, "lineage": [], "files": {}}  # fmt: skip
    return render_card(config, repo_id=entry.hub.repo, entry=entry, samples_file=samples_file)
