"""An admin on the Zalo Bot Platform: the photo they send for a broadcast is fetched by the
adapter (its httpx client, from the photo_url Zalo gives) and handed to the composer; the
preview is what Zalo can show (here, without PUBLIC_BASE_URL, the text in place of an image)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage

from bot.app import App
from storage.models import Broadcast, Outbox
from tests.contract.drivers import ZaloDriver, settle, zalo_server
from tests.contract.journeys import join_group
from tests.staff import make_admin, rows
from tests.support import Chat


async def test_a_broadcast_photo_sent_on_zalo_is_fetched_and_used(ward: App) -> None:
    async with zalo_server(ward) as (zalo, bot):
        admin = ZaloDriver(zalo, bot, "a" * 20, "Hà Phạm")
        await join_group(admin, name="Hà Phạm", group_code="DEMO-TDP01")
        await make_admin(ward, Chat(ward.conversation, channel="zalo", user=admin.external_id))
        await admin.send("/quantri")
        await admin.choose("Soạn thông báo")
        picture = io.BytesIO()
        PILImage.new("RGB", (32, 24), "green").save(picture, format="JPEG")
        zalo.push_image(admin.external_id, data=picture.getvalue(), caption="Ngày hội chuyển đổi số")
        await settle(zalo, bot)
        assert "Thông báo này có mời bà con học bài không?" in admin.last_text()
        await admin.choose("Không cần nút")
        assert "Gửi thông báo này cho ai?" in admin.last_text()
        await admin.choose("Tất cả người dân")
        # The preview, as Zalo shows it: who sends it, the text, and the photo's stand-in.
        assert admin.said("📢 UBND phường Mẫu:\nNgày hội chuyển đổi số\n\n🖼 Ở đây có một hình ảnh")
        await admin.choose("Đồng ý, gửi")
        await admin.choose("Gửi ngay")
        [broadcast] = await rows(ward, Broadcast)
        assert broadcast.text == "Ngày hội chuyển đổi số" and broadcast.image is not None
        assert Path(broadcast.image).read_bytes() == picture.getvalue()
        [row] = await rows(ward, Outbox)
        assert row.broadcast_id == broadcast.id and broadcast.message["image"] == broadcast.image

        # A sticker or a photo elsewhere is not kept.
        zalo.push_image(admin.external_id, data=picture.getvalue())
        await settle(zalo, bot)
        assert "chỉ đọc được tin nhắn chữ" in admin.last_text()
        kept = list((ward.conversation.services.files_dir / "in").iterdir())
        assert [str(p.resolve()) for p in kept] == [broadcast.image]
