"""E-mail through the configured SMTP server (settings group `mail`): invitations and password resets."""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from .errors import MailUnavailable
from .settings import MailSettings


def configured(settings: MailSettings) -> bool:
    return bool(settings.host)


def send(settings: MailSettings, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        if settings.tls == "ssl":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with smtp:
            if settings.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailUnavailable(f"Le serveur d'e-mail n'a pas accepté le message ({type(exc).__name__}) : "
                              "réessayez plus tard, ou transmettez le lien vous-même.") from None


def invitation(settings: MailSettings, to: str, link: str, days: float) -> None:
    send(settings, to, "Votre accès à l'espace des équipes de masecondechance",
         f"Bonjour,\n\nUn compte a été ouvert pour vous dans l'espace des équipes de masecondechance.\n"
         f"Choisissez votre mot de passe en ouvrant ce lien (valable {days:g} jours, une seule fois) :\n\n{link}\n\n"
         "Si vous n'attendiez pas ce message, ignorez-le.\n")


def reset(settings: MailSettings, to: str, link: str, hours: float) -> None:
    send(settings, to, "Nouveau mot de passe pour l'espace des équipes",
         f"Bonjour,\n\nPour choisir un nouveau mot de passe, ouvrez ce lien (valable {hours:g} h, une seule fois) :"
         f"\n\n{link}\n\nSi vous n'avez rien demandé, ignorez ce message : votre mot de passe ne change pas.\n")
