"""Channel adapters: they translate a channel's updates into ``Incoming`` and render
``Reply`` objects. They compose the core; nothing else in the application knows them."""
