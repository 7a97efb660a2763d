"""The PFN transformer (``pfn``) and its regression output, the bar distribution (``bar``)."""
