# Data folder: model-card templates. Shipped in the wheel as the package ganzoo._cards.
