"""`globalign audit-data`: the language and geographic make-up of SFT and preference datasets."""
