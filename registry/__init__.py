# Data folder: registry entries (TOML). Shipped in the wheel as the package ganzoo._registry.
