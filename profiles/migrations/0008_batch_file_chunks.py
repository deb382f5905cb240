from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0007_token_retrievable"),
    ]

    operations = [
        migrations.CreateModel(
            name="BatchFileChunk",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                (
                    "offset",
                    models.BigIntegerField(
                        help_text="Byte offset of the chunk's first byte in the file."
                    ),
                ),
                ("data", models.BinaryField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("name", "offset"), name="batch_file_chunk_at"
                    )
                ],
            },
        ),
    ]
