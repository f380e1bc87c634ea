"""Joining: greeting and consent, the display name, the residential group.

Nothing personal is stored before consent: a resident who declines leaves no trace.
After consent the steps are taken in order, each only if still missing (name, then
group), so ``/start`` always resumes where a resident left off.
"""

from __future__ import annotations

from bot.core.conversation import Context
from bot.core.text import clean_line, fold
from handlers import invites, menu
from handlers.common import PAGE_SIZE, int_arg, paginate, words
from handlers.steps import Step
from storage.groups import count_groups, find_group_by_code, get_group, get_ward, list_groups, list_wards
from storage.models import ResidentGroup
from storage.people import create_person, forget_identities
from storage.roles import roles_of

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
        group = await find_group_by_code(ctx.session, code=group_code)
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
    return bool(await roles_of(ctx.session, person_id=person.id))


JOINING_STEPS = (Step.CONFIRM_NAME, Step.ASK_NAME, Step.CHOOSE_GROUP)


async def resume(ctx: Context, *, note: str | None = None) -> None:
    """Consent is given but the name or the group is missing: ask the joining question
    pending again, else what is missing (keeping the group of the join link she came with)."""
    prompt = ctx.pending_prompt()
    if ctx.state.step in JOINING_STEPS and prompt:
        ctx.reoffered = True  # the same question, the same options
        text = f"{note}\n\n{prompt}" if note else prompt
        options = ctx.pending_options()
        ctx.ask(text, options) if options else ctx.say(text)
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
    """``name:ok`` keeps the name from the channel; ``name:edit`` asks for another."""
    assert ctx.person is not None
    suggested = ctx.data.get("suggested")
    if ctx.args == ("ok",) and suggested:
        ctx.person.display_name = clean_line(str(suggested), limit=NAME_MAX)
        await continue_onboarding(ctx, group_code=ctx.data.get("group_code"))
        return
    await ask_name(ctx)


async def ask_name(ctx: Context) -> None:
    """``/doiten``: type the name to show (also used during onboarding)."""
    ctx.goto(Step.ASK_NAME, group_code=ctx.data.get("group_code"))
    ctx.say(ctx.t("onboarding.ask_name"))


async def receive_name(ctx: Context) -> None:
    assert ctx.person is not None
    raw = ctx.incoming.text or ""
    name = clean_line(raw, limit=NAME_MAX + 1)
    if len(name) > NAME_MAX:
        ctx.say(ctx.t("onboarding.name_too_long", limit=NAME_MAX))
        return
    if not any(c.isalpha() for c in name):
        ctx.say(ctx.t("onboarding.name_invalid"))
        return
    changed = bool(ctx.person.display_name)
    ctx.person.display_name = name
    if changed:
        await menu.show_main_menu(ctx, ctx.t("onboarding.name_saved", name=name))
        return
    await continue_onboarding(ctx, group_code=ctx.data.get("group_code"))


async def change_group(ctx: Context) -> None:
    """``/doito``: choose another residential group."""
    await choose_group(ctx)


async def choose_group(ctx: Context, *, group_code: str | None = None, ward_id: int | None = None, page: int = 0) -> None:
    """Offer the group named by the join link, else the list (wards first if several)."""
    t = ctx.t
    if group_code:
        group = await find_group_by_code(ctx.session, code=group_code)
        if group is not None:
            await _confirm_group(ctx, group)
            return
        ctx.say(t("onboarding.group_link_unknown"))
    wards = await list_wards(ctx.session)
    if not wards:
        await menu.show_main_menu(ctx, t("onboarding.no_groups"))
        return
    if ward_id is None and len(wards) > 1:
        ctx.goto(Step.CHOOSE_GROUP)
        ctx.ask(t("onboarding.choose_ward"), [(w.name, f"group:ward:{w.id}") for w in wards])
        return
    ward = next((w for w in wards if w.id == ward_id), wards[0])
    shown = paginate(await list_groups(ctx.session, ward_id=ward.id), page)
    options = [(g.name, f"group:set:{g.id}") for g in shown.items]
    options += shown.nav(ctx, f"group:page:{ward.id}:")
    if len(wards) > 1:
        options.append((t("onboarding.other_ward"), "group:wards"))
    ctx.goto(Step.CHOOSE_GROUP, ward=ward.id, page=shown.number)
    ctx.ask(t("onboarding.choose_group", ward=ward.name, hint=shown.hint(ctx)), options)


async def _confirm_group(ctx: Context, group: ResidentGroup) -> None:
    ward = await get_ward(ctx.session, ward_id=group.ward_id)
    ctx.goto(Step.CHOOSE_GROUP, ward=group.ward_id)
    ctx.ask(
        ctx.t("onboarding.confirm_group", group=group.name, ward=ward.name if ward else ""),
        [
            (ctx.t("onboarding.group_ok"), f"group:set:{group.id}", words(ctx, "words.yes")),
            (ctx.t("onboarding.group_other"), f"group:page:{group.ward_id}:0", words(ctx, "words.no")),
        ],
    )


async def group_action(ctx: Context) -> None:
    """``group:set:<id>``, ``group:page:<ward>:<page>``, ``group:ward:<id>``, ``group:wards``."""
    assert ctx.person is not None
    kind = ctx.args[0] if ctx.args else ""
    if kind == "set":
        group_id = int_arg(ctx, 1, low=1)
        group = await get_group(ctx.session, group_id=group_id) if group_id else None
        if group is None:
            await choose_group(ctx)
            return
        had_group = ctx.person.group_id is not None
        ctx.person.group_id = group.id
        ward = await get_ward(ctx.session, ward_id=group.ward_id)
        key = "onboarding.group_changed" if had_group else "onboarding.joined"
        text = ctx.t(key, name=ctx.person.display_name or "", group=group.name, ward=ward.name if ward else "")
        await continue_onboarding(ctx, greeting=text)
    elif kind == "page":
        await choose_group(ctx, ward_id=int_arg(ctx, 1, low=1), page=int_arg(ctx, 2) or 0)
    elif kind == "ward":
        await choose_group(ctx, ward_id=int_arg(ctx, 1, low=1))
    else:
        ctx.goto(Step.CHOOSE_GROUP)
        wards = await list_wards(ctx.session)
        ctx.ask(ctx.t("onboarding.choose_ward"), [(w.name, f"group:ward:{w.id}") for w in wards])


async def search_group(ctx: Context) -> None:
    """Typed text while choosing a group: find groups whose name or code contains it."""
    typed = fold(ctx.incoming.text or "")[:60]
    ward_id = ctx.data.get("ward")
    groups = await list_groups(ctx.session, ward_id=ward_id if isinstance(ward_id, int) else None)
    matches = [g for g in groups if typed and (typed in fold(g.name) or typed == fold(g.code))]
    if len(matches) == 1:
        await _confirm_group(ctx, matches[0])
    elif 1 < len(matches) <= PAGE_SIZE:
        ctx.ask(ctx.t("onboarding.group_matches"), [(g.name, f"group:set:{g.id}") for g in matches])
    else:
        ctx.say(ctx.t("onboarding.group_not_found"))
        await choose_group(ctx, ward_id=ward_id if isinstance(ward_id, int) else None)
