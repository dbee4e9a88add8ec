"""Template categories (模板分类) of the starter library: the one place their zh/en labels and sizes are said.

A category names the sizes a template in it is made at, as the marketplaces and apps ask for them; a 详情页
(detail page) is a long image: 750 wide and at least 3000 tall. The gallery shows these labels as filter chips
(`GET /api/v1/templates` lists them) and tests/test_starter_templates.py holds every bundled template to its size.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    zh: str
    en: str
    sizes: tuple[tuple[int, int], ...] = ()  # allowed (width, height); empty: see min_height
    width: int | None = None  # long images: a fixed width ...
    min_height: int | None = None  # ... and at least this height

    def allows(self, width: int, height: int) -> bool:
        if self.width is not None:
            return width == self.width and height >= (self.min_height or 0)
        return (width, height) in self.sizes

    def view(self) -> dict[str, object]:
        size = (
            f"{self.width}×{self.min_height}+"
            if self.width is not None
            else " / ".join(f"{w}×{h}" for w, h in self.sizes)
        )
        return {"zh": self.zh, "en": self.en, "size": size}


CATEGORIES: dict[str, Category] = {
    "main_image": Category("主图", "Main image", ((800, 800),)),
    "detail_page": Category("详情页", "Detail page", width=750, min_height=3000),
    "coupon": Category("优惠券", "Coupon", ((1200, 600), (750, 300))),
    "price_tag": Category("价格标签", "Price tag", ((1080, 1080), (800, 600))),
    "xiaohongshu": Category("小红书封面", "Xiaohongshu cover", ((1242, 1660),)),
    "douyin": Category("抖音封面", "Douyin cover", ((1080, 1920),)),
    "moments": Category("朋友圈海报", "WeChat Moments poster", ((1080, 1920), (1080, 1080))),
    "shop_banner": Category("店铺横幅", "Shop banner", ((1920, 600), (1200, 600))),
    "festival": Category("节日促销", "Festival sale", ((800, 800), (1080, 1920), (1242, 1660), (1920, 600))),
}
