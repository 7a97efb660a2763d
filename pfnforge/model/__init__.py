"""The model zoo: the architecture plugin API (``api``), the transformer block (``blocks``), the first-party
architectures (``pfn``: rowwise, ``cellwise``, ``colrow``) and the regression output, the bar distribution (``bar``)."""
