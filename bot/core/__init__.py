"""The channel-free core: what a user sent (``Incoming``), what the bot answers
(``Reply``), the conversation engine and the message catalogue.

Nothing in this package imports a channel library (aiogram, httpx, ...): adapters in
``bot.channels`` translate between a channel and these types.
"""
