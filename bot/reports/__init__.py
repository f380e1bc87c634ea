"""What the ward takes away from the bot: the XLSX report (``xlsx``), the completion chart
(``chart``), residents' certificates (``certificate``) and the groups' join QR codes (``qr``).

Each builder returns bytes (or writes files) and knows nothing of channels: the CLI writes
them to disk, the chat sends them as a ``Document`` or an ``Image``. People read only
Vietnamese here, from the default catalogue (``wording``); fonts are the DejaVu faces that
ship inside matplotlib (``fonts``), so Vietnamese diacritics render on any machine.
"""
