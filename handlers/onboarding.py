"""Joining: greeting and consent, the display name, the residential group.

Nothing personal is stored before consent: a resident who declines leaves no trace.
After consent the steps are taken in order, each only if still missing (name, then
group), so ``/start`` always resumes where a resident left off.
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.messages import Marks
from bot.core.text import clean_line
from bot.group_search import has_link_prefix, match_code, search
from handlers import invites, menu
from handlers.common import int_arg, paginate, words
from handlers.steps import Step
from storage.groups import count_groups, find_group_by_code, get_group, get_ward, list_groups, list_wards
from storage.models import ResidentGroup, Ward
from storage.people import create_person, forget_identities

CONSENT_VERSION = "2026-11"  # bump when the consent text changes in meaning
NAME_MAX = 64
GROUP_LINK_PREFIX = "g_"


def _group_code_from(args: tuple[str, ...]) -> str | None:
    if args and args[0].startswith(GROUP_LINK_PREFIX) and 2 < len(args[0]) <= 64:
        return args[0][len(GROUP_LINK_PREFIX) :]
    return None


async def start(ctx: Context) -> None:
    """``/start`` (optionally ``/start g_<group code>`` from a join link or QR code, or
    ``/start ld_<code>`` from a leader invitation: consent first if new, then accept)."""
    t = ctx.t
    group_code = _group_code_from(ctx.args)
    invite = invites.invite_code_from(ctx.args)
    typed = ctx.incoming.text or ""
    if ctx.person is None and group_code is None and not ctx.args and not typed.startswith("/"):
        # Someone new whose first message is the code on the notice board ("g_TDP09"): on Zalo
        # there is no deep link, so that is how the QR poster's group comes with them.
        coded = match_code(await list_groups(ctx.session), typed)
        group_code = coded.code if coded is not None else None
    if ctx.person is None:
        ctx.goto(Step.CONSENT, group_code=group_code, invite=invite)
        ctx.ask(
            t("onboarding.welcome"),
            [
                (t("onboarding.consent_yes"), "consent:yes", words(ctx, "words.yes")),
                (t("onboarding.consent_no"), "consent:no", words(ctx, "words.no")),
            ],
        )
        return
    if invite is not None:
        await invites.accept(ctx, invite)
        await continue_onboarding(ctx)
        return
    if group_code is not None:
        group = await find_group_by_code(ctx.session, code=group_code, ward_id=ctx.ward_scope)
        if group is not None and group.id != ctx.person.group_id:
            await _confirm_group(ctx, group)
            return
    await continue_onboarding(ctx, greeting=t("menu.welcome_back", name=ctx.person.display_name or ""))


async def start_over(ctx: Context) -> None:
    """Someone with no consent on record pressed a button or typed a command that needs it."""
    ctx.say(ctx.t("onboarding.needs_start"))
    ctx.args = ()
    await start(ctx)


async def is_onboarded(ctx: Context) -> bool:
    """A member has a name and, once the ward has imported its groups, a group (a leader or
    admin may have none): until then their lessons would count for nobody, so nothing but
    joining is offered."""
    person = ctx.person
    if person is None or person.id is None or not person.display_name:
        return False
    if person.group_id is not None or await count_groups(ctx.session) == 0:
        return True
    # Ward staff appointed from the command line may live outside the ward's groups.
    return bool(await ctx.role_kinds())


JOINING_STEPS = (Step.CONFIRM_NAME, Step.ASK_NAME, Step.CHOOSE_GROUP)


async def resume(ctx: Context, *, note: str | None = None) -> None:
    """Consent is given but the name or the group is missing: ask the joining question
    pending again, else what is missing (keeping the group of the join link she came with)."""
    prompt = ctx.pending_prompt()
    if ctx.state.step in JOINING_STEPS and prompt:
        ctx.reoffered = True  # the same question, the same options
        text = f"{note}\n\n{prompt}" if note else prompt
        options = ctx.pending_options()
        ctx.ask(text, options, marks=ctx.pending_marks()) if options else ctx.say(text)
        return
    if note:
        ctx.say(note)
    code = ctx.data.get("group_code")
    await continue_onboarding(ctx, group_code=code if isinstance(code, str) else None)


async def resume_incomplete(ctx: Context) -> None:
    """Anything else asked before joining is finished: finish joining first."""
    await resume(ctx, note=ctx.t("onboarding.finish_first"))


async def answer_consent(ctx: Context) -> None:
    t = ctx.t
    if ctx.person is not None:
        await continue_onboarding(ctx)
        return
    if ctx.args != ("yes",):
        # Declining: forget the channel id too, so nothing about this person stays. The consent
        # question is replaced (its buttons go); a button to change one's mind carries the join
        # link's group or invitation itself, since nothing here is kept to remember them.
        assert ctx.identity.id is not None
        await forget_identities(ctx.session, identity_id=ctx.identity.id)
        ctx.erased = True
        again = ":".join(["begin", *(f"{prefix}{value}" for prefix, value in (
            (GROUP_LINK_PREFIX, ctx.data.get("group_code")), (invites.INVITE_PREFIX, ctx.data.get("invite")))
            if isinstance(value, str))])
        ctx.say(t("onboarding.declined"), replace=True)
        ctx.ask(t("onboarding.changed_mind_hint"), [(t("onboarding.changed_mind"), again)])
        return
    group_code = ctx.data.get("group_code")
    invite = ctx.data.get("invite")
    ctx.person = await create_person(
        ctx.session,
        identity=ctx.identity,
        consent_version=CONSENT_VERSION,
        locale="vi",
        now=ctx.now,
    )
    if isinstance(invite, str):
        await invites.accept(ctx, invite)
    await continue_onboarding(ctx, group_code=group_code)


async def continue_onboarding(
    ctx: Context, *, group_code: str | None = None, greeting: str | None = None
) -> None:
    """Ask for what is still missing (name, then group), else show the main menu."""
    person = ctx.person
    assert person is not None
    if not person.display_name:
        suggested = clean_line(ctx.incoming.display_name or "", limit=NAME_MAX)
        if suggested:
            ctx.goto(Step.CONFIRM_NAME, suggested=suggested, group_code=group_code)
            ctx.ask(
                ctx.t("onboarding.confirm_name", name=suggested),
                [
                    (ctx.t("onboarding.name_ok"), "name:ok", words(ctx, "words.yes")),
                    (ctx.t("onboarding.name_change"), "name:edit", words(ctx, "words.no")),
                ],
            )
        else:
            ctx.goto(Step.ASK_NAME, group_code=group_code)
            ctx.say(ctx.t("onboarding.ask_name"))
        return
    if person.group_id is None:
        if await count_groups(ctx.session) > 0:
            await choose_group(ctx, group_code=group_code)
            return
        greeting = greeting or ctx.t("onboarding.no_groups")
    await menu.show_main_menu(ctx, greeting)


async def answer_name(ctx: Context) -> None:
    """``name:ok`` keeps the name from the channel; ``name:edit`` asks for another;
    ``name:keep`` (the "Thôi" of ``/doiten``) keeps the name one has."""
    assert ctx.person is not None
    suggested = ctx.data.get("suggested")
    if ctx.args == ("ok",) and suggested:
        ctx.person.display_name = clean_line(str(suggested), limit=NAME_MAX)
        await continue_onboarding(ctx, group_code=ctx.data.get("group_code"))
        return
    if ctx.args == ("keep",) and ctx.person.display_name:
        kept = ctx.t("onboarding.name_kept", name=ctx.person.display_name)
        await continue_onboarding(ctx, group_code=ctx.data.get("group_code"), greeting=kept)
        return
    await ask_name(ctx)


async def ask_name(ctx: Context, *, note: str | None = None, group_code: str | None = None) -> None:
    """``/doiten``: type the name to show (also used during onboarding). Whoever has a name
    may keep it ("Thôi"); someone joining without one has nothing to go back to."""
    ctx.goto(Step.ASK_NAME, group_code=group_code or ctx.data.get("group_code"))
    text = ctx.t("onboarding.ask_name")
    text = f"{note}\n\n{text}" if note else text
    if ctx.person is not None and ctx.person.display_name:
        ctx.ask(text, [(ctx.t("onboarding.name_keep"), "name:keep")])
    else:
        ctx.say(text)


async def receive_name(ctx: Context) -> None:
    assert ctx.person is not None
    raw = ctx.incoming.text or ""
    if has_link_prefix(raw) and (coded := match_code(await list_groups(ctx.session), raw)) is not None:
        # The group's code from the notice board, typed where the name is asked: never a name.
        # Someone joining keeps it for the group question that follows.
        joining = ctx.person.group_id is None
        await ask_name(ctx, note=ctx.t("onboarding.code_not_name", group=coded.name),
                       group_code=coded.code if joining else None)
        return
    name = clean_line(raw, limit=NAME_MAX + 1)
    if len(name) > NAME_MAX:
        await ask_name(ctx, note=ctx.t("onboarding.name_too_long", limit=NAME_MAX))  # the way out stays offered
        return
    if not any(c.isalpha() for c in name):
        await ask_name(ctx, note=ctx.t("onboarding.name_invalid"))
        return
    changed = bool(ctx.person.display_name)
    ctx.person.display_name = name
    if changed:
        await menu.show_main_menu(ctx, ctx.t("onboarding.name_saved", name=name))
        return
    await continue_onboarding(ctx, group_code=ctx.data.get("group_code"))


async def change_group(ctx: Context) -> None:
    """``/doito``: choose another residential group (or keep the one she is in)."""
    await choose_group(ctx)


async def _current_group(ctx: Context) -> ResidentGroup | None:
    group_id = ctx.person.group_id if ctx.person is not None else None
    return await get_group(ctx.session, group_id=group_id) if group_id is not None else None


def _keep_option(ctx: Context, current: ResidentGroup | None) -> list[tuple[str, str, tuple[str, ...]]]:
    """"✋ Giữ tổ hiện tại (Tổ dân phố 3)" for whoever is in a group already."""
    if current is None:
        return []
    return [(ctx.t("onboarding.group_keep", group=current.name), "group:keep", words(ctx, "words.keep"))]


async def choose_group(ctx: Context, *, group_code: str | None = None, ward_id: int | None = None, page: int = 0) -> None:
    """Offer the group named by the join link, else the list (wards first if several)."""
    t = ctx.t
    if group_code:
        group = await find_group_by_code(ctx.session, code=group_code, ward_id=ctx.ward_scope)
        if group is not None:
            await _confirm_group(ctx, group)
            return
        ctx.say(t("onboarding.group_link_unknown"))
    wards = await list_wards(ctx.session, ward_id=ctx.ward_scope)
    if not wards:
        await menu.show_main_menu(ctx, t("onboarding.no_groups"))
        return
    keep = _keep_option(ctx, await _current_group(ctx))
    if ward_id is None and len(wards) > 1:
        ctx.goto(Step.CHOOSE_GROUP)
        ctx.ask(t("onboarding.choose_ward"), [*((w.name, f"group:ward:{w.id}") for w in wards), *keep],
                marks=Marks.LETTERS)  # "Phường 5": a typed number is a name, never a line
        return
    ward = next((w for w in wards if w.id == ward_id), wards[0])
    shown = paginate(await list_groups(ctx.session, ward_id=ward.id), page)
    options: list = [(g.name, f"group:set:{g.id}") for g in shown.items]
    options += shown.nav(ctx, f"group:page:{ward.id}:")
    if len(wards) > 1:
        options.append((t("onboarding.other_ward"), "group:wards"))
    ctx.goto(Step.CHOOSE_GROUP, ward=ward.id, page=shown.number)
    # Lettered: a typed "9" searches for tổ 9 (``search_group``), it never picks the ninth line.
    ctx.ask(t("onboarding.choose_group", ward=ward.name, hint=shown.hint(ctx)), options + keep, marks=Marks.LETTERS)


async def _confirm_group(ctx: Context, group: ResidentGroup) -> None:
    """"Tổ dân phố 9, Phường X. Đúng không?"; to someone in another group already, which one
    she is in and whether to move ("Bạn đang ở Tổ dân phố 3. Chuyển sang Tổ dân phố 5?")."""
    t = ctx.t
    ward = await get_ward(ctx.session, ward_id=group.ward_id)
    ward_name = ward.name if ward else ""
    current = await _current_group(ctx)
    if current is not None and current.id == group.id:
        await menu.show_main_menu(ctx, t("onboarding.group_kept", group=current.name, ward=ward_name))
        return
    ctx.goto(Step.CHOOSE_GROUP, ward=group.ward_id)
    other = (t("onboarding.group_other"), f"group:page:{group.ward_id}:0")
    if current is None:
        ctx.ask(
            t("onboarding.confirm_group", group=group.name, ward=ward_name),
            [(t("onboarding.group_ok"), f"group:set:{group.id}", words(ctx, "words.yes")), (*other, words(ctx, "words.no"))],
        )
        return
    keep = (t("onboarding.group_keep", group=current.name), "group:keep", (*words(ctx, "words.no"), *words(ctx, "words.keep")))
    ctx.ask(
        t("onboarding.confirm_move", current=current.name, group=group.name, ward=ward_name),
        [(t("onboarding.group_move", group=group.name), f"group:set:{group.id}", words(ctx, "words.yes")), keep, other],
    )


async def group_action(ctx: Context) -> None:
    """``group:set:<id>``, ``group:page:<ward>:<page>``, ``group:ward:<id>``, ``group:wards``,
    ``group:keep`` (stay in the group one is in)."""
    assert ctx.person is not None
    kind = ctx.args[0] if ctx.args else ""
    if kind == "set":
        group_id = int_arg(ctx, 1, low=1)
        group = await get_group(ctx.session, group_id=group_id) if group_id else None
        if group is None or ctx.ward_scope not in (None, group.ward_id):
            await choose_group(ctx)
            return
        had_group = ctx.person.group_id is not None
        ctx.person.group_id = group.id
        ward = await get_ward(ctx.session, ward_id=group.ward_id)
        key = "onboarding.group_changed" if had_group else "onboarding.joined"
        text = ctx.t(key, name=ctx.person.display_name or "", group=group.name, ward=ward.name if ward else "")
        await continue_onboarding(ctx, greeting=text)
    elif kind == "keep":
        current = await _current_group(ctx)
        if current is None:
            await choose_group(ctx)
            return
        ward = await get_ward(ctx.session, ward_id=current.ward_id)
        await continue_onboarding(ctx, greeting=ctx.t("onboarding.group_kept", group=current.name,
                                                      ward=ward.name if ward else ""))
    elif kind == "page":
        await choose_group(ctx, ward_id=int_arg(ctx, 1, low=1), page=int_arg(ctx, 2) or 0)
    elif kind == "ward":
        await choose_group(ctx, ward_id=int_arg(ctx, 1, low=1))
    else:
        await choose_group(ctx)


async def search_group(ctx: Context) -> None:
    """Typed text while choosing a group: a group's short code ("g_TDP09", any case, from the
    notice board), a number ("9", "tổ 9", "tdp 9"), a name, with small typos
    (``bot.group_search``). One clear match is asked to confirm; else at most five, best first."""
    t = ctx.t
    ward_id = ctx.data.get("ward")
    ward_id = ward_id if isinstance(ward_id, int) else None
    found = search(await list_groups(ctx.session, ward_id=ctx.ward_scope), ctx.incoming.text or "", ward_id=ward_id)
    if found.sure is not None:
        await _confirm_group(ctx, found.sure)
        return
    if not found.groups:
        ctx.say(t("onboarding.group_search_vague" if found.vague else "onboarding.group_not_found"))
        await choose_group(ctx, ward_id=ward_id)
        return
    wards = {w.id: w for w in await list_wards(ctx.session, ward_id=ctx.ward_scope)}
    several = len({g.ward_id for g in found.groups}) > 1
    options: list = [(f"{g.name} ({_ward_name(wards, g.ward_id)})" if several else g.name, f"group:set:{g.id}")
                     for g in found.groups]
    back = ward_id if ward_id is not None else found.groups[0].ward_id if not several else None
    options.append((t("onboarding.group_all"), f"group:page:{back}:0" if back is not None else "group:wards"))
    options += _keep_option(ctx, await _current_group(ctx))
    named = sorted({_ward_name(wards, g.ward_id) for g in found.groups})
    ctx.ask(t("onboarding.group_matches", ward=", ".join(named)), options, marks=Marks.LETTERS)


def _ward_name(wards: dict[int | None, Ward], ward_id: int) -> str:
    ward = wards.get(ward_id)
    return ward.name if ward is not None else ""
